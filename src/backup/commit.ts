/** The commit of a backup: SHA256SUMS, then the signed manifest, the marker that the backup exists (docs/FORMAT.md). */
import { Readable } from 'node:stream';
import { DrError } from '../core/errors.ts';
import { serializeManifest, type Manifest, type PartRecord } from '../repo/manifest.ts';
import type { DestSet } from '../storage/destset.ts';

/** `sha256sum -c`-able: one line per part, in key order. */
export async function writeSums(dests: DestSet, id: string, parts: readonly PartRecord[]): Promise<void> {
  const sums = parts.map((p) => `${p.stored.sha256}  ${p.key}\n`).sort((a, b) => a.slice(66).localeCompare(b.slice(66))).join('');
  await putSmall(dests, `${id}/SHA256SUMS`, sums);
}

export async function writeManifest(dests: DestSet, manifest: Manifest): Promise<void> {
  await putSmall(dests, `${manifest.id}/manifest.json`, serializeManifest(manifest));
}

/** A small object (SHA256SUMS, manifest) to every live destination; a failure drops that destination. */
async function putSmall(dests: DestSet, key: string, text: string): Promise<void> {
  await Promise.all(dests.live().map((d) => d.put(key, Readable.from([Buffer.from(text)])).catch((err: unknown) => dests.fail(d, err))));
  if (!dests.live().length) throw new DrError(`every destination failed while writing ${key}`);
}
