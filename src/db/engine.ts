/**
 * What a database engine implements (src/db/<engine>/), and what the engine-agnostic orchestration hands it:
 * a dump (src/db/dump.ts) and a replay into a throwaway container (src/db/replay.ts).
 */
import type { Transform, Writable } from 'node:stream';
import type Docker from 'dockerode';
import type { ExecOptions, ExecResult, ExecStreams } from '../docker/exec.ts';
import type { DatabaseRecord, EngineKind, PartRecord } from '../repo/manifest.ts';
import type { Logger } from '../core/log.ts';

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
  /** how discovery recognises it: the image repository's last path component, the server's executable */
  image: RegExp;
  executables: readonly string[];
  /** where the official image keeps its data inside the container */
  dataPath(env: Map<string, string>): string;
  probe(target: DbTarget): Promise<DbProbe>;
  /** logins and checks while everything runs; start() takes the snapshot, store() writes the parts and their statistics */
  prepareDump(ctx: DumpContext): Promise<PreparedDump>;
  /**
   * The throwaway container a restore replays into: 'stack' runs the stack container's own environment and
   * command (it initialises exactly as the stack does), else the engine's own command line.
   */
  throwaway: 'stack' | { cmd: string[] };
  /** before the throwaway container exists: files into the fresh data volume (e.g. the RDB Redis loads) */
  seed?(ctx: ReplayContext): Promise<void>;
  /** waits for the throwaway database and replays the backup into it (stop-on-error) */
  replay(t: Throwaway, ctx: ReplayContext): Promise<void>;
  /** reads the replayed database back and compares it with the manifest; a difference is a CheckError */
  compare(t: Throwaway, ctx: ReplayContext): Promise<Compared>;
  /** leaves the data on the volume as the stack's container expects it; default: docker stop */
  stop?(t: Throwaway): Promise<void>;
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

// ---------------------------------------------------------------------------------------------------------------
// Dump

export interface DumpResult { record: DatabaseRecord; parts: PartRecord[] }

/** A dump whose logins and checks are done (everything still runs). */
export interface PreparedDump {
  /** launches the dump commands (e.g. while the writers are quiesced) */
  start(): StartedDump;
}
export interface StartedDump {
  /** every database of the container has its snapshot, or its dump is over (then store() reports how); never rejects */
  snapshot: Promise<void>;
  /** streams the started dumps (and the parts that need no snapshot: accounts, globals, the RDB) into parts */
  store(): Promise<DumpResult>;
  /** the backup failed before store(): stops the started commands */
  abandon(): void;
}

/**
 * How a started command shows that its snapshot exists: its first byte of output, or a filter of its stderr
 * that calls taken() when a progress line says so (and drops the progress lines).
 */
export type SnapshotMark = 'first-byte' | ((taken: () => void) => Transform);

/** A started dump command; its output waits in bounded buffers until stored. */
export interface Launched { snapshot: Promise<void>; streams: Promise<ExecStreams>; abandon(): void }

/** What the dump orchestration offers an engine for one container. */
export interface DumpContext {
  target: DbTarget;
  info: DatabaseInfo;
  log: Logger;
  /** the container's manifest record, its engine-independent fields filled */
  record: DatabaseRecord;
  /** starts `exec` and watches for its snapshot */
  launch(exec: ExecOptions, mark: SnapshotMark): Launched;
  /** streams a launched command's stdout into part `name` (side: a copy of the bytes, e.g. the statistics) */
  storeLaunched(l: Launched, name: string, ext: string, what: string, side?: Writable): Promise<PartRecord>;
  /** runs `exec` and streams its stdout into part `name` */
  storeExec(name: string, ext: string, exec: ExecOptions, what: string): Promise<PartRecord>;
  /** streams the file at `path` inside the container into part `name`, labelled `label` */
  storeFile(path: string, name: string, ext: string, label: string, side?: Writable): Promise<PartRecord>;
}

// ---------------------------------------------------------------------------------------------------------------
// Replay

/** The throwaway database container of a restore. */
export interface Throwaway extends DbTarget {
  /** performance.now() just before it started */
  startedAt: number;
}

/** What the replay orchestration offers an engine for one database container of a backup. */
export interface ReplayContext {
  /** the backup's record of this container */
  db: DatabaseRecord;
  /** writes part `key`'s plaintext into the fresh data volume as file `name` (its SHA-256 checked) */
  writeFile(key: string, name: string): Promise<void>;
  /** streams part `key`'s plaintext into `exec` in the throwaway container */
  feed(t: Throwaway, key: string, exec: ExecOptions): Promise<ExecResult>;
  /** feed(), a CheckError unless the command exits 0 */
  replayPart(t: Throwaway, key: string, exec: ExecOptions): Promise<void>;
  /** until `probe` says yes; a DrError if the container stops or the time runs out */
  waitReady(t: Throwaway, probe: () => Promise<boolean>): Promise<void>;
  warn(message: string): void;
}

/** What the comparison of a replayed database found (a difference is thrown, not returned). */
export interface Compared {
  databases: { name: string; tables: number; rows: number }[];
  /** Redis: keys with a TTL in the backup that ran out since (expected, not a difference) */
  expired?: number;
  /** what the verification found that is not a difference, e.g. "3 volatile keys expired since the backup" */
  notes?: string[];
}
