/**
 * The destinations of one backup. Every part is written to all of them from one read of the source; a
 * destination that fails is dropped (and reported) while the others go on, so the backup's status can say
 * exactly which copies are committed.
 */
import type { Storage } from './types.ts';
import type { Logger } from '../core/log.ts';
import { errorMessage } from '../core/errors.ts';

export interface CopyStatus { kind: string; location: string; committed: boolean; error: string | null }

export class DestSet {
  readonly all: Storage[];
  private readonly failed = new Map<Storage, string>();
  private readonly log: Logger | undefined;

  constructor(all: Storage[], log?: Logger) {
    this.all = all;
    this.log = log;
  }

  live(): Storage[] {
    return this.all.filter((s) => !this.failed.has(s));
  }

  fail(s: Storage, err: unknown): void {
    if (this.failed.has(s)) return;
    const msg = errorMessage(err);
    this.failed.set(s, msg);
    this.log?.error({ destination: `${s.kind}:${s.location}`, err: msg }, 'destination failed; going on with the others');
  }

  /**
   * Makes every live destination ready for objects under `prefixes`. Best effort: what fails here is left
   * undone (a local folder whose fsync failed is removed again), and the put that needs it reports it.
   */
  async prepare(prefixes: string[]): Promise<void> {
    await Promise.all(this.live().flatMap((s) => prefixes.map((p) => s.prepare?.(p).catch(() => {}))));
  }

  errorOf(s: Storage): string | null {
    return this.failed.get(s) ?? null;
  }

  status(committed: boolean): CopyStatus[] {
    return this.all.map((s) => ({ kind: s.kind, location: s.location, committed: committed && !this.failed.has(s), error: this.failed.get(s) ?? null }));
  }
}
