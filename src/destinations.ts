/** State of the configured destinations, as `dr status` reports it. */
import { access, constants, statfs, stat } from 'node:fs/promises';
import type { Config } from './config.ts';

export interface DestinationStatus {
  kind: 'local';
  location: string;
  exists: boolean;
  writable: boolean;
  freeBytes: number | null;
}

export async function destinationStatus(config: Pick<Config, 'localDir'>): Promise<DestinationStatus[]> {
  const dir = config.localDir;
  const st = await stat(dir).catch(() => null);
  const exists = !!st?.isDirectory();
  const writable = exists && (await access(dir, constants.W_OK).then(() => true, () => false));
  const fs = exists ? await statfs(dir).catch(() => null) : null;
  return [{ kind: 'local', location: dir, exists, writable, freeBytes: fs ? fs.bavail * fs.bsize : null }];
}
