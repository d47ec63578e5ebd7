import { mariadb } from './mariadb/engine.ts';
import { postgres } from './postgres/engine.ts';
import { redis } from './redis/engine.ts';
import type { Engine } from './engine.ts';
import type { EngineKind } from '../repo/manifest.ts';

export const ENGINES: Record<EngineKind, Engine> = { mariadb, postgres, redis };

/** Engine from an image reference: the repository's last path component (mariadb:10.11, library/postgres...). */
export function engineFromImage(image: string): EngineKind | undefined {
  const repo = image.split('@')[0]!.replace(/:[^/]*$/, '').split('/').pop() ?? '';
  if (/^(mariadb|mysql|percona)/.test(repo)) return 'mariadb';
  if (/^(postgres|postgis|pgvector|timescaledb)/.test(repo)) return 'postgres';
  if (/^(redis|valkey|keydb)/.test(repo)) return 'redis';
  return undefined;
}

/** Engine from the container's processes (docker top), for images with other names. */
export function engineFromProcesses(commands: readonly string[]): EngineKind | undefined {
  for (const c of commands) {
    const exe = (c.split(/\s+/)[0] ?? '').split('/').pop() ?? '';
    if (exe === 'mariadbd' || exe === 'mysqld') return 'mariadb';
    if (exe === 'postgres' || exe === 'postmaster') return 'postgres';
    if (exe === 'redis-server') return 'redis';
  }
  return undefined;
}

export type { Engine } from './engine.ts';
