/** redis-cli in a stack's Redis container: the password from REDIS_PASSWORD in its environment or its `--requirepass` argument. */
import { DrError } from '../../core/errors.ts';
import { execChecked } from '../../docker/exec.ts';
import { registerSecret } from '../../core/redact.ts';
import { containerSecret } from '../credentials.ts';
import type { DbTarget } from '../engine.ts';

async function redisAuthEnv(t: DbTarget): Promise<Record<string, string>> {
  let pw = await containerSecret(t, ['REDIS_PASSWORD', 'REDISCLI_AUTH']);
  if (!pw) {
    const i = t.cmd.indexOf('--requirepass');
    const v = i >= 0 ? t.cmd[i + 1] : undefined;
    if (v && !v.includes('$')) { pw = v; registerSecret(v); }
  }
  // REDISCLI_AUTH keeps the password out of redis-cli's argv.
  return pw ? { REDISCLI_AUTH: pw } : {};
}

/** redis-cli exits 0 on auth errors; treat error replies as failures. */
export async function redisCli(t: DbTarget, what: string, args: string[]): Promise<string> {
  const out = await execChecked(t.container, t.name, what, { cmd: ['redis-cli', '--no-auth-warning', ...args], env: await redisAuthEnv(t) });
  const first = out.trimStart().split('\n', 1)[0] ?? '';
  if (/^(NOAUTH|WRONGPASS|ERR|\(error\))/.test(first)) {
    throw new DrError(`${t.name}: ${what} failed: ${first.trim()}`, undefined,
      'check REDIS_PASSWORD in the container\'s environment matches its --requirepass');
  }
  return out;
}
