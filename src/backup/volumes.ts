/**
 * The backup's volumes: each one read (src/docker/volumes.ts) into its tar part and, from the same stream,
 * its per-file index part.
 */
import type Docker from 'dockerode';
import type { Logger } from '../core/log.ts';
import { DrError } from '../core/errors.ts';
import { stage } from '../core/hooks.ts';
import { mapLimit } from '../core/concurrency.ts';
import { prepareVolume, newIndexStream, type VolumeSource } from '../docker/volumes.ts';
import { storePart, EXT, type PartOptions } from '../codec/write.ts';
import { safeSegment } from '../db/dump.ts';
import type { PartRecord, VolumeRecord } from '../repo/manifest.ts';
import type { DestSet } from '../storage/destset.ts';
import type { Discovery, DiscoveryHandles, VolumeInfo } from '../stack/discover.ts';

/** quiesced volumes whose reads start together as the writers stop (each then waits with ≤ ~1 MiB in its pipe) */
export const EARLY_READS = 16;

/**
 * Reading volumes into parts, `parallelism` at once. archive() resolves once every volume has been READ to
 * its end, with the promises of their records: a volume frees its slot for the next one as soon as it is
 * read (its last bytes are compressed, encrypted, written and fsynced while the next volume is read), so the
 * writers can run again as soon as every volume they write has been read, not once it is stored.
 */
export class VolumeArchiver {
  private readonly j: ArchiveJob;
  constructor(job: ArchiveJob) { this.j = job; }

  private volume(name: string): VolumeInfo { return this.j.report.volumes.find((v) => v.name === name)!; }

  /** volume `name` made ready to read (found; a helper container created on the archive-API path) */
  source(name: string): Promise<VolumeSource> { return sourceOf(this.j.docker, this.volume(name), this.j.report, this.j.handles); }

  async archive(names: string[], quiesced: string[], ready?: Map<string, VolumeSource>): Promise<Promise<VolumeRecord>[]> {
    const { dests, id, opts, signal, log, parts } = this.j;
    const stored: Promise<VolumeRecord>[] = [];
    try {
      await mapLimit(names, this.j.parallelism, async (name) => {
        signal.throwIfAborted();
        await stage(`volume:${name}`, signal);
        const source = ready?.get(name) ?? await this.source(name);
        ready?.delete(name); // archiveVolume releases it from here on
        let read!: () => void;
        const wasRead = new Promise<void>((r) => { read = r; });
        const p = archiveVolume(dests, id, this.volume(name), source, opts, read)
          .then((r) => { parts.push(...r.parts); return { ...r.record, quiesced }; });
        p.catch(() => {}); // awaited by the caller; a failure after the read is reported there
        stored.push(p);
        const t = performance.now();
        await Promise.race([wasRead, p]);
        log.debug({ volume: name, readMs: Math.round(performance.now() - t) }, 'volume read');
      });
    } catch (err) {
      await Promise.allSettled(stored); // nothing may still be writing when the failed backup is removed
      throw err;
    }
    return stored;
  }

  /** the record of a database volume that its dump covers (hot mode) */
  coveredByDump(volume: string, container: string): VolumeRecord {
    return { ...volumeRecordBase(this.volume(volume)), part: null, index: null, coveredBy: `dump:${container}`, quiesced: [] };
  }
}

export interface ArchiveJob {
  docker: Docker;
  report: Discovery;
  handles: DiscoveryHandles;
  dests: DestSet;
  id: string;
  opts: PartOptions;
  parallelism: number;
  signal: AbortSignal;
  log: Logger;
  /** the run's parts: each volume's two parts are added once stored */
  parts: PartRecord[];
}

function volumeRecordBase(v: VolumeInfo): Omit<VolumeRecord, 'part' | 'index' | 'coveredBy' | 'quiesced'> {
  return { name: v.name, role: v.role, driver: v.driver, labels: v.labels, mountedBy: v.mountedBy.map((m) => ({ container: m.container, path: m.path })) };
}

/** How volume `v` is read (src/docker/volumes.ts prepareVolume), with an image borrowed from the stack for a helper. */
async function sourceOf(docker: Docker, v: VolumeInfo, report: Discovery, handles: DiscoveryHandles): Promise<VolumeSource> {
  const owner = v.mountedBy[0]?.container ?? report.containers[0]?.name;
  const image = report.containers.find((c) => c.name === owner)?.imageId;
  if (!image || !handles.containers.has(owner!)) throw new DrError(`volume ${v.name}: no container of the stack to borrow an image from for the helper`);
  return prepareVolume(docker, v.name, image);
}

/** One volume: its tar part and, built from the same stream, its per-file index part. Releases `source`. */
async function archiveVolume(storage: DestSet, id: string, v: VolumeInfo, source: VolumeSource, opts: PartOptions, onRead?: () => void): Promise<{ record: Omit<VolumeRecord, 'quiesced'>; parts: PartRecord[] }> {
  try {
    const tarStream = await source.open();
    const indexOut = newIndexStream();
    const seg = safeSegment(v.name);
    const volP = storePart(storage, id, `volumes/${seg}.tar${EXT[opts.compression]}.age`, 'volume', v.name, tarStream, opts, { index: { out: indexOut, what: `volume ${v.name}` }, ...(onRead ? { onRead } : {}) });
    const idxP = storePart(storage, id, `index/${seg}.jsonl${EXT[opts.compression]}.age`, 'index', v.name, indexOut, opts);
    let volPart: PartRecord, idxPart: PartRecord;
    try {
      [volPart, idxPart] = await Promise.all([volP, idxP]);
    } catch (err) {
      indexOut.destroy(); // the index part must not wait for a tar that will never end
      tarStream.destroy();
      await Promise.allSettled([volP, idxP]); // nothing of this volume is still writing when the error goes up
      throw err;
    }
    idxPart.files = volPart.files!;
    return { record: { ...volumeRecordBase(v), part: volPart.key, index: idxPart.key, coveredBy: null }, parts: [volPart, idxPart] };
  } finally {
    await source.done();
  }
}
