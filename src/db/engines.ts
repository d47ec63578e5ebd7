/** The engines dr knows, and how discovery tells which one a container runs. */
import { mariadb } from './mariadb/engine.ts';
import { postgres } from './postgres/engine.ts';
import { redis } from './redis/engine.ts';
import type { Engine } from './engine.ts';
import type { EngineKind } from '../repo/manifest.ts';

export const ENGINES: Record<EngineKind, Engine> = { mariadb, postgres, redis };

export const ENGINE_KINDS = Object.keys(ENGINES) as readonly EngineKind[];

/** Engine from an image reference: the repository's last path component (mariadb:10.11, library/postgres...). */
export function engineFromImage(image: string): EngineKind | undefined {
  const repo = image.split('@')[0]!.replace(/:[^/]*$/, '').split('/').pop() ?? '';
  return Object.values(ENGINES).find((e) => e.image.test(repo))?.kind;
}

/** Engine from the container's processes (docker top), for images with other names. */
export function engineFromProcesses(commands: readonly string[]): EngineKind | undefined {
  for (const c of commands) {
    const exe = (c.split(/\s+/)[0] ?? '').split('/').pop() ?? '';
    const e = Object.values(ENGINES).find((x) => x.executables.includes(exe));
    if (e) return e.kind;
  }
  return undefined;
}

