/** Starting the stack's containers in dependency order and waiting for their healthchecks. */
import type Docker from 'dockerode';
import { stopOrderOf, type ContainerInfo } from './discover.ts';
import type { Logger } from '../core/log.ts';
import { errorMessage } from '../core/errors.ts';

export interface ServiceState { name: string; state: string; health: string | null; ok: boolean }

/** Starts `names` (dependencies first), then waits until each is healthy (or running, without a healthcheck). */
export async function startAndWait(docker: Docker, all: ContainerInfo[], names: string[], timeoutSec: number, log: Logger): Promise<ServiceState[]> {
  const set = new Set(names);
  const order = stopOrderOf(all.filter((c) => set.has(c.name)).map((c) => ({ name: c.name, dependsOn: c.dependsOn }))).reverse();
  const end = Date.now() + timeoutSec * 1000;
  const states: ServiceState[] = [];
  for (const name of order) {
    const c = docker.getContainer(name);
    try {
      await c.start().catch((err: { statusCode?: number }) => { if (err.statusCode !== 304) throw err; });
    } catch (err) {
      states.push({ name, state: `could not start: ${errorMessage(err)}`, health: null, ok: false });
      continue;
    }
    // dependants start only once what they depend on is healthy (compose's depends_on: service_healthy)
    states.push(await waitHealthy(c, name, end));
    log.info(states.at(-1)!, 'service state');
  }
  return states;
}

export async function waitHealthy(c: Docker.Container, name: string, deadline: number): Promise<ServiceState> {
  for (;;) {
    const st = await c.inspect();
    const health = st.State.Health?.Status ?? null;
    const ok = st.State.Running && (health === null || health === 'healthy');
    if (ok || Date.now() > deadline || (!st.State.Running && st.State.Status === 'exited' && st.State.ExitCode !== 0)) {
      return { name, state: st.State.Status, health, ok };
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
}
