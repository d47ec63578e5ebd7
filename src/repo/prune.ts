/**
 * Retention, applied per destination: committed backups only (an uncommitted one is never counted), the
 * policy from DR_KEEP_* (src/repo/retention.ts, restic's forget semantics) in the TZ calendar, the newest
 * committed backup never removed, an empty policy removes nothing. A backup is removed manifest first, so
 * it stops existing before its parts go: a backup whose manifest could not be removed is left whole; one
 * whose manifest went but not every part is an uncommitted leftover that the next backup's clean-up
 * removes. Either way the prune of that backup failed and says which object and why (an S3 per-key error
 * of DeleteObjects counts); the other backups are still pruned. Callers hold the destination lock.
 */
import type { Storage } from '../storage/types.ts';
import { listBackups } from './catalog.ts';
import { parsePolicy, isEmptyPolicy, applyPolicy, describePolicy, type Decision, type RetentionPolicy } from './retention.ts';
import { ConfigError, type Config } from '../core/config.ts';
import type { Logger } from '../core/log.ts';
import { errorMessage } from '../core/errors.ts';
import { scrub } from '../core/redact.ts';

export interface PruneResult {
  kind: string;
  location: string;
  decisions: Decision[];
  removed: string[];
  /** backups whose removal failed; `committed` false: the manifest is gone, parts are left for the clean-up */
  failed: { id: string; committed: boolean; error: string }[];
  error: string | null;
}

export function retentionPolicy(config: Config): { policy: RetentionPolicy; timeZone: string } {
  const { policy, problems } = parsePolicy(config.retentionEnv);
  if (problems.length) throw new ConfigError(problems);
  return { policy, timeZone: config.retentionEnv.TZ || 'UTC' };
}

export async function pruneDestinations(storages: Storage[], policy: RetentionPolicy, timeZone: string, dryRun: boolean, log: Logger): Promise<PruneResult[]> {
  const results: PruneResult[] = [];
  for (const s of storages) {
    const r: PruneResult = { kind: s.kind, location: s.location, decisions: [], removed: [], failed: [], error: null };
    const where = `${s.kind}:${s.location}`;
    try {
      const { backups } = await listBackups(s);
      r.decisions = applyPolicy(backups.map((b) => ({ id: b.id, time: new Date(b.startedAt) })), policy, timeZone);
      if (!dryRun && !isEmptyPolicy(policy)) {
        for (const d of r.decisions.filter((x) => !x.keep)) {
          try {
            await s.deletePrefix(`${d.id}/manifest.json`); // uncommitted first …
          } catch (err) {
            const error = `backup ${d.id} was not removed (it is still whole): ${scrub(errorMessage(err))}`;
            r.failed.push({ id: d.id, committed: true, error });
            log.error({ destination: where, id: d.id, err: error }, 'prune could not remove a backup');
            continue;
          }
          try {
            await s.deletePrefix(d.id); // … then its parts
          } catch (err) {
            const error = `backup ${d.id}: its manifest was removed but not all its parts (the next backup's clean-up of uncommitted backups removes them): ${scrub(errorMessage(err))}`;
            r.failed.push({ id: d.id, committed: false, error });
            log.error({ destination: where, id: d.id, err: error }, 'prune could not remove all parts of a backup');
            continue;
          }
          r.removed.push(d.id);
          log.info({ destination: where, id: d.id }, 'backup removed by the retention policy');
        }
      }
      if (r.failed.length) r.error = r.failed.map((f) => f.error).join('; ');
    } catch (err) {
      r.error = scrub(errorMessage(err));
      log.error({ destination: where, err: r.error }, 'prune failed on this destination');
    }
    results.push(r);
  }
  log.info({ policy: describePolicy(policy), removed: results.reduce((n, x) => n + x.removed.length, 0) }, 'retention applied');
  return results;
}
