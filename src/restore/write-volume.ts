/**
 * Writing one volume of a restore, and reading it back. Every tar entry passes the gate first (safe, and
 * exactly as the index lists it: src/tar/gate.ts). Where the host can write the volume's directory, GNU tar
 * extracts into it and the re-read (src/tar/reread.ts) follows tar's progress; otherwise the archive API of a
 * helper container writes it and the volume is read back through the same API and compared with the index.
 */
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type Docker from 'dockerode';
import { untilAborted } from '../core/concurrency.ts';
import { CheckError, DrError } from '../core/errors.ts';
import { localMountpoint, toolStage } from '../core/tools.ts';
import { createHelper, readVolume } from '../docker/volumes.ts';
import { openPlain, tarChecker } from '../codec/read.ts';
import type { Manifest, PartRecord } from '../repo/manifest.ts';
import type { Storage } from '../storage/types.ts';
import { tarGate } from '../tar/gate.ts';
import { rereader } from '../tar/reread.ts';
import type { IndexEntry } from '../tar/file-index.ts';
import { fixRoot } from './targets.ts';

export interface VolumeWrite {
  docker: Docker;
  storage: Storage;
  m: Manifest;
  /** the volume's tar part */
  part: PartRecord;
  /** the volume's name in the backup */
  volume: string;
  /** the volume written (the name, or name + suffix) */
  target: string;
  index: Map<string, IndexEntry>;
  identities: string[];
  /** an image for helper containers */
  image: string;
  signal: AbortSignal;
}

/** Writes `target` from the part and compares every restored entry with the index: the differences (capped) and the entry count. */
export async function writeVolume({ docker, storage, m, part, volume, target, index, identities, image, signal }: VolumeWrite): Promise<{ diffs: string[]; entries: number; via: 'tar' | 'api' }> {
  const mp = await localMountpoint(await docker.getVolume(target).inspect().then((x) => x.Mountpoint, () => undefined), true);
  // every entry passes the gate (safe, and exactly as the index lists it) before the extractor sees it;
  // then every restored entry is re-read and compared with the index
  // read once: the stored bytes' SHA-256 is checked on the way (`checked`); a failure of the stream that is
  // not dr's own (a DrError: the gate, tar) is the part's, reported as its CheckError
  const { stream: plain, checked } = await openPlain(storage, m, part, identities);
  const partFirst = async (err: unknown): Promise<never> => {
    const partErr = err instanceof DrError || signal.aborted ? null : await checked.then(() => null, (e: unknown) => e);
    throw partErr instanceof CheckError ? partErr : err;
  };
  if (mp) {
    // GNU tar straight into the volume's directory; the re-read follows tar's progress (tar -v)
    const rr = rereader(target, mp, index);
    const gate = tarGate(volume, index, (path) => rr.entry(path));
    let lines = 0;
    const progress = new Writable({
      write(c: Buffer, _e, cb) {
        for (let i = c.indexOf(10); i !== -1; i = c.indexOf(10, i + 1)) lines++;
        rr.started(lines - 1);
        cb();
      },
    });
    // 64 KiB records (-b 128): tar empties the pipe in one read instead of six 10 KiB ones, so Node writes
    // to it in 64 KiB steps instead of 10 KiB ones (a wake-up each)
    try {
      await pipeline(plain, gate.stream, toolStage('tar', ['-C', mp, '-x', '-v', '-p', '-b', '128', '--numeric-owner', '--same-owner', '--ignore-zeros', '-f', '-'], `tar -x into volume ${target}`), progress, { signal }).catch(partFirst);
      await checked;
      return { ...(await untilAborted(rr.finish(), signal)), via: 'tar' };
    } finally {
      await rr.close();
    }
  } else {
    const gate = tarGate(volume, index);
    const helper = await createHelper(docker, image, target, false, 'restore');
    try {
      await untilAborted(Promise.all([helper.putArchive(gate.stream, { path: '/vol' }), pipeline(plain, gate.stream, { signal })]), signal).catch(partFirst);
      await checked;
    } finally {
      await helper.remove({ force: true, v: true }).catch(() => {});
    }
    await fixRoot(docker, image, target, index.get('.'));
    const checker = tarChecker(target, index, false);
    const back = await readVolume(docker, target, image);
    try {
      await pipeline(back.stream, checker.sink, { signal });
    } finally {
      await back.done();
    }
    return { diffs: checker.diffs, entries: checker.entries(), via: 'api' };
  }
}
