/**
 * Credentials come from the DB container's own environment, the way its official image reads them:
 * `NAME` or `NAME_FILE` (a file inside the container, read through exec). Every value found is registered
 * as a secret so it can never be printed.
 */
import { execCollect } from '../docker/exec.ts';
import { registerSecret } from '../core/redact.ts';
import type { DbTarget } from './engine.ts';

export async function containerSecret(t: DbTarget, names: readonly string[]): Promise<string | undefined> {
  for (const name of names) {
    const direct = t.env.get(name);
    if (direct) {
      registerSecret(direct);
      return direct;
    }
    const file = t.env.get(`${name}_FILE`);
    if (file) {
      const r = await execCollect(t.container, { cmd: ['cat', '--', file] }, 64 << 10);
      if (r.exitCode === 0) {
        const v = r.stdout.replace(/\r?\n$/, '');
        registerSecret(v);
        return v;
      }
    }
  }
  return undefined;
}
