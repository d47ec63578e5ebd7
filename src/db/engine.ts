import type Docker from 'dockerode';
import type { EngineKind } from '../repo/manifest.ts';

export const ENGINE_KINDS: readonly EngineKind[] = ['mariadb', 'postgres', 'redis'];

/** A database container as an engine adapter sees it: the API handle and its environment (may hold secrets). */
export interface DbTarget {
  name: string;
  container: Docker.Container;
  env: Map<string, string>;
  /** the container's command line (Config.Cmd), for engines that take credentials there */
  cmd: string[];
}

export interface DbProbe {
  /** numeric version, e.g. "10.11.6" */
  version: string;
  /** what the server calls itself, e.g. "10.11.6-MariaDB-0+deb12u1" */
  serverVersion: string;
  /** databases that a backup dumps (system schemas left out) */
  databases: string[];
  /** Redis: keys per logical database */
  keys?: Record<string, number>;
}

export interface Engine {
  kind: EngineKind;
  /** where the official image keeps its data inside the container */
  dataPath(env: Map<string, string>): string;
  probe(target: DbTarget): Promise<DbProbe>;
}

/** A database container of the stack, as discovery found it (src/stack/discover.ts). */
export interface DatabaseInfo {
  container: string;
  engine: EngineKind;
  image: string;
  running: boolean;
  version: string | null;
  serverVersion: string | null;
  databases: string[];
  keys?: Record<string, number>;
  dataVolumes: string[];
  error: string | null;
}
