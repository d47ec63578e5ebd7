/**
 * The Docker engine connection. Every container and volume is reached through the socket (exec, archive
 * API), never through container IP addresses.
 */
import Docker from 'dockerode';
import { DrError, ExitCode, errorMessage } from '../core/errors.ts';
import { describeDocker, type Config } from '../core/config.ts';

export type { Docker };

export async function connectDocker(config: Pick<Config, 'docker' | 'dockerTimeoutSec'>): Promise<Docker> {
  const docker = new Docker({ ...config.docker, timeout: config.dockerTimeoutSec * 1000 } as Docker.DockerOptions);
  const where = describeDocker(config.docker);
  try {
    await docker.ping();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'socket not found' : code === 'EACCES' ? 'permission denied' : errorMessage(err);
    throw new DrError(
      `cannot reach the Docker engine at ${where} (${why})`,
      ExitCode.unavailable,
      code === 'EACCES'
        ? 'run dr as root or as a member of the socket\'s group'
        : 'start dockerd, or point DR_DOCKER_SOCKET (or DOCKER_HOST) at the engine\'s socket',
      { cause: err },
    );
  }
  // Remove the per-request timeout after the ping: archives and dumps stream for as long as they need.
  return new Docker({ ...config.docker } as Docker.DockerOptions);
}

/** Parses `KEY=VALUE` lines (container Config.Env) into a map. */
export function envMap(env: readonly string[] | null | undefined): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of env ?? []) {
    const i = line.indexOf('=');
    if (i > 0) m.set(line.slice(0, i), line.slice(i + 1));
  }
  return m;
}
