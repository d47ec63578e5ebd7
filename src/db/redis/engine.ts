/** Redis: probe, dump (the RDB and its keyspace summary), replay into a throwaway Redis, compare. */
import { redisCli } from './client.ts';
import { infoKeys } from './keyspace.ts';
import { prepareRedisDump } from './dump.ts';
import { THROWAWAY_CMD, seedRedis, replayRedis, compareRedis, stopRedis } from './replay.ts';
import type { Engine } from '../engine.ts';

export const redis: Engine = {
  kind: 'redis',
  image: /^(redis|valkey|keydb)/,
  executables: ['redis-server'],
  dataPath: () => '/data',
  async probe(t) {
    const info = await redisCli(t, 'querying Redis', ['INFO']);
    const serverVersion = /^redis_version:(.+)$/m.exec(info)?.[1]?.trim() ?? '';
    const keys = infoKeys(info);
    return { serverVersion, version: serverVersion, databases: Object.keys(keys), keys };
  },
  prepareDump: prepareRedisDump,
  throwaway: { cmd: THROWAWAY_CMD },
  seed: seedRedis,
  replay: replayRedis,
  compare: compareRedis,
  stop: stopRedis,
};
