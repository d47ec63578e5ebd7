/** Redis: password from REDIS_PASSWORD in the container's environment or its `--requirepass` argument. */
import { DrError } from '../errors.ts';
import { execChecked } from '../exec.ts';
import { registerSecret } from '../redact.ts';
import { containerSecret } from './credentials.ts';
import type { DbTarget, Engine } from './types.ts';

export async function redisAuthEnv(t: DbTarget): Promise<Record<string, string>> {
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

export const redis: Engine = {
  kind: 'redis',
  dataPath: () => '/data',
  async probe(t) {
    const info = await redisCli(t, 'querying Redis', ['INFO']);
    const serverVersion = /^redis_version:(.+)$/m.exec(info)?.[1]?.trim() ?? '';
    const keys: Record<string, number> = {};
    for (const m of info.matchAll(/^(db\d+):keys=(\d+)/gm)) keys[m[1]!] = Number(m[2]);
    return { serverVersion, version: serverVersion, databases: Object.keys(keys), keys };
  },
};
