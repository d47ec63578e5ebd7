/**
 * Target volumes, through helper containers of the stack's images: whether one is empty, the --force safety
 * copy (the old content copied and checked entry by entry, under a name never used before), emptying a
 * volume, and the owner and mode of its root.
 */
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import { DrError, CheckError } from '../core/errors.ts';
import { createHelper, volumeTar, readVolume } from '../docker/volumes.ts';
import { tarChecker } from '../codec/read.ts';
import { tarEntries, type IndexEntry } from '../tar/file-index.ts';

export const KEEP_SUFFIX = '_pre-restore_';
const stamp = () => new Date().toISOString().replace(/[-:]/g, '').slice(0, 15).toLowerCase();

/** `<volume>_pre-restore_<now>`, made unique (a second --force never merges into an earlier copy). */
export async function keepName(docker: Docker, volume: string, taken: Set<string>): Promise<string> {
  const base = `${volume}${KEEP_SUFFIX}${stamp()}`;
  for (let i = 1; ; i++) {
    const name = i === 1 ? base : `${base}-${i}`;
    if (taken.has(name)) continue;
    if (!(await docker.getVolume(name).inspect().then(() => true, () => false))) { taken.add(name); return name; }
  }
}

/** Is the volume absent, or present and empty? (reads at most two tar entries) */
export async function volumeState(docker: Docker, name: string, image: string): Promise<'absent' | 'empty' | 'non-empty'> {
  const exists = await docker.getVolume(name).inspect().then(() => true, () => false);
  if (!exists) return 'absent';
  const helper = await createHelper(docker, image, name, true, 'restore');
  try {
    const s = await volumeTar(helper, name);
    let bytes = 0;
    for await (const c of s) {
      bytes += (c as Buffer).length;
      // an empty volume is one directory header + the end-of-archive blocks: well under 4 KiB
      if (bytes > 4096) { s.destroy(); return 'non-empty'; }
    }
    return bytes > 3 * 512 + 1024 ? 'non-empty' : 'empty';
  } finally {
    await helper.remove({ force: true, v: true }).catch(() => {});
  }
}

/**
 * Copies the content of volume `from` into volume `to` (created, with `labels`, when given) through the
 * archive API, indexing every entry on the way (type, mode, owner, size, SHA-256), then reads `to` back and
 * compares every entry with that index. Returns the number of entries; throws on any difference.
 */
export async function copyVerified(docker: Docker, from: string, to: string, image: string, labels: Record<string, string> | null): Promise<number> {
  if (labels) await docker.createVolume({ Name: to, Labels: labels });
  const index = new Map<string, IndexEntry>();
  const src = await createHelper(docker, image, from, true, 'restore');
  const dst = await createHelper(docker, image, to, false, 'restore');
  try {
    const scanner = tarEntries(`volume ${from}`, (e) => { index.set(e.path, e); });
    const scan = new Transform({
      transform(c: Buffer, _e, cb) { try { scanner.scan(c); cb(null, c); } catch (err) { cb(err as Error); } },
      flush(cb) { try { scanner.finish(); cb(); } catch (err) { cb(err as Error); } },
    });
    await Promise.all([dst.putArchive(scan, { path: '/vol' }), pipeline(await volumeTar(src, from), scan)]);
  } finally {
    await src.remove({ force: true, v: true }).catch(() => {});
    await dst.remove({ force: true, v: true }).catch(() => {});
  }
  await fixRoot(docker, image, to, index.get('.'));
  const checker = tarChecker(to, index, false);
  const back = await readVolume(docker, to, image);
  try {
    await pipeline(back.stream, checker.sink);
  } finally {
    await back.done();
  }
  if (checker.diffs.length) throw new CheckError(`the copy of volume ${from} in ${to} differs from it: ${checker.diffs.slice(0, 10).join('; ')}`);
  if (checker.entries() !== index.size) throw new CheckError(`the copy of volume ${from} in ${to} has ${checker.entries()} entries, the volume ${index.size}`);
  return index.size;
}

/** Removes everything inside `volume` (the volume itself stays). `safe` says where its content is, for the error. */
export async function emptyVolume(docker: Docker, volume: string, image: string, safe: string): Promise<void> {
  const wipe = await docker.createContainer({
    Image: image, Entrypoint: ['sh', '-c', 'find /vol -mindepth 1 -delete'], Cmd: [], User: '0:0', Labels: { 'dr.helper': 'restore', 'dr.exclude': 'true' },
    HostConfig: { Binds: [`${volume}:/vol`], NetworkMode: 'none' },
  });
  try {
    await wipe.start();
    const r = await wipe.wait() as { StatusCode: number };
    if (r.StatusCode !== 0) throw new DrError(`could not empty volume ${volume} (${safe})`);
  } finally {
    await wipe.remove({ force: true, v: true }).catch(() => {});
  }
}

/** The archive API does not apply the root entry (./) to the volume's root: owner and mode are set here. */
export async function fixRoot(docker: Docker, image: string, volume: string, root: IndexEntry | undefined): Promise<void> {
  if (!root) return;
  const c = await docker.createContainer({
    Image: image, Entrypoint: ['sh', '-c', `chown ${root.uid}:${root.gid} /vol && chmod ${root.mode.toString(8)} /vol`], Cmd: [], User: '0:0',
    Labels: { 'dr.helper': 'restore', 'dr.exclude': 'true' }, HostConfig: { Binds: [`${volume}:/vol`], NetworkMode: 'none' },
  });
  try {
    await c.start();
    const r = await c.wait() as { StatusCode: number };
    if (r.StatusCode !== 0) throw new DrError(`volume ${volume}: could not set the owner and mode of its root directory`);
  } finally {
    await c.remove({ force: true, v: true }).catch(() => {});
  }
}
