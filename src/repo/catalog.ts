/** Committed backups on a destination: a backup exists only once its manifest.json is there. */
import { DeleteRefusedError, type Storage } from '../storage/types.ts';
import { BACKUP_ID_RE, type Manifest } from './manifest.ts';
import type { Logger } from '../core/log.ts';
import { errorMessage, DrError } from '../core/errors.ts';

export interface BackupSummary {
  id: string;
  /** the destinations holding a committed copy */
  copies: { kind: string; location: string }[];
  mode: string;
  startedAt: string;
  finishedAt: string;
  sizeBytes: number;
  parts: number;
  durationMs: number;
  downtimeMs: number;
  volumes: number;
  databases: number;
}

async function readText(storage: Storage, key: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of await storage.get(key)) {
    size += (c as Buffer).length;
    if (size > 64 << 20) throw new Error(`${key} is larger than 64 MiB`);
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export async function readManifest(storage: Storage, id: string): Promise<Manifest> {
  if (!BACKUP_ID_RE.test(id)) throw new DrError(`${JSON.stringify(id)} is not a backup id (like 20261126T010203Z-9f3a1c)`);
  let text: string;
  try {
    text = await readText(storage, `${id}/manifest.json`);
  } catch (err) {
    throw new DrError(`backup ${id} has no readable manifest on ${storage.kind} ${storage.location}: ${errorMessage(err)}`);
  }
  try {
    const m = JSON.parse(text) as Manifest;
    if (m.id !== id) throw new Error(`it names backup ${m.id}`);
    return m;
  } catch (err) {
    throw new DrError(`backup ${id}: manifest.json is not valid (${errorMessage(err)})`);
  }
}

export function summarize(m: Manifest, storage: Storage): BackupSummary {
  return {
    id: m.id, copies: [{ kind: storage.kind, location: storage.location }], mode: m.mode,
    startedAt: m.startedAt, finishedAt: m.finishedAt,
    sizeBytes: m.parts.reduce((n, p) => n + p.stored.size, 0), parts: m.parts.length,
    durationMs: m.durationMs, downtimeMs: m.downtime.ms, volumes: m.volumes.length, databases: m.databases.length,
  };
}

/** Committed backups, newest first, and the problems met (unreadable manifests). */
export async function listBackups(storage: Storage): Promise<{ backups: BackupSummary[]; problems: string[] }> {
  const objects = await storage.list('');
  const ids = new Set(objects.filter((o) => /^[^/]+\/manifest\.json$/.test(o.key)).map((o) => o.key.split('/')[0]!).filter((id) => BACKUP_ID_RE.test(id)));
  const backups: BackupSummary[] = [];
  const problems: string[] = [];
  for (const id of ids) {
    try { backups.push(summarize(await readManifest(storage, id), storage)); } catch (err) { problems.push(errorMessage(err)); }
  }
  backups.sort((a, b) => b.id.localeCompare(a.id));
  return { backups, problems };
}

/** Committed backups on all `storages`, merged by id (copies listed per destination), newest first. */
export async function listAll(storages: Storage[]): Promise<{ backups: BackupSummary[]; problems: string[] }> {
  const byId = new Map<string, BackupSummary>();
  const problems: string[] = [];
  for (const s of storages) {
    let r: { backups: BackupSummary[]; problems: string[] };
    try { r = await listBackups(s); } catch (err) { problems.push(`${s.kind} ${s.location}: ${errorMessage(err)}`); continue; }
    problems.push(...r.problems);
    for (const b of r.backups) {
      const have = byId.get(b.id);
      if (have) have.copies.push(...b.copies); else byId.set(b.id, b);
    }
  }
  return { backups: [...byId.values()].sort((a, b) => b.id.localeCompare(a.id)), problems };
}

/** The destination to read backup `id` (or the newest, when id is undefined) from: the first that has it committed. */
export async function locateBackup(storages: Storage[], id: string | undefined): Promise<{ id: string; storage: Storage }> {
  const { backups, problems } = await listAll(storages);
  const where = storages.map((s) => `${s.kind} ${s.location}`).join(', ');
  const b = id ? backups.find((x) => x.id === id) : backups[0];
  if (!b) {
    throw new DrError(id ? `backup ${id} has no committed copy on ${where}` : `no committed backup on ${where}`, undefined,
      (problems.length ? `(${problems.join('; ')}) ` : '') + 'dr list shows the backups; check DR_LOCAL_DIR / DR_S3_* or --from');
  }
  const first = b.copies[0]!;
  return { id: b.id, storage: storages.find((s) => s.kind === first.kind && s.location === first.location)! };
}

/** Removes uncommitted backups (no manifest) whose newest object is older than the grace period. */
export async function cleanupIncomplete(storage: Storage, graceSec: number, log: Logger): Promise<string[]> {
  const objects = await storage.list('');
  const byId = new Map<string, { committed: boolean; newest: number }>();
  for (const o of objects) {
    const id = o.key.split('/')[0]!;
    if (!BACKUP_ID_RE.test(id)) continue;
    const e = byId.get(id) ?? { committed: false, newest: 0 };
    if (o.key === `${id}/manifest.json`) e.committed = true;
    e.newest = Math.max(e.newest, o.modified.getTime());
    byId.set(id, e);
  }
  // on local disk, a backup killed right after creating its folders holds folders but no file yet
  for (const f of (await storage.folders?.()) ?? []) {
    if (BACKUP_ID_RE.test(f.name) && !byId.has(f.name)) byId.set(f.name, { committed: false, newest: f.modified.getTime() });
  }
  const removed: string[] = [];
  for (const [id, e] of byId) {
    if (!e.committed && Date.now() - e.newest > graceSec * 1000) {
      try {
        await storage.deletePrefix(id);
      } catch (err) {
        // the server refused to delete some objects (S3 per-key errors, e.g. AccessDenied or an object lock):
        // the leftover stays and is tried again next time; the destination is still usable for new backups
        if (!(err instanceof DeleteRefusedError)) throw err;
        log.warn({ destination: `${storage.kind}:${storage.location}`, id, err: errorMessage(err) }, 'could not remove an incomplete backup (no manifest); it is tried again by the next backup');
        continue;
      }
      removed.push(id);
    }
  }
  if (removed.length) log.warn({ removed }, 'removed incomplete backups (no manifest) left by interrupted runs');
  return removed;
}
