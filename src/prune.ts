/**
 * Retention, applied per destination: committed backups only (an uncommitted one is never counted), the
 * policy from DR_KEEP_* (src/retention.ts, restic's forget semantics) in the TZ calendar, the newest
 * committed backup never removed, an empty policy removes nothing. A backup is removed manifest first, so
 * it stops existing before its parts go. Callers hold the destination lock.
 */
import type { Storage } from './storage/types.ts';
import { listBackups } from './backups.ts';
import { parsePolicy, isEmptyPolicy, applyPolicy, describePolicy, type Decision, type RetentionPolicy } from './retention.ts';
import { ConfigError, type Config } from './config.ts';
import type { Logger } from './log.ts';
import { errorMessage } from './errors.ts';

export interface PruneResult {
  kind: string;
  location: string;
  decisions: Decision[];
  removed: string[];
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
    const r: PruneResult = { kind: s.kind, location: s.location, decisions: [], removed: [], error: null };
    try {
      const { backups } = await listBackups(s);
      r.decisions = applyPolicy(backups.map((b) => ({ id: b.id, time: new Date(b.startedAt) })), policy, timeZone);
      if (!dryRun && !isEmptyPolicy(policy)) {
        for (const d of r.decisions.filter((x) => !x.keep)) {
          await s.deletePrefix(`${d.id}/manifest.json`); // uncommitted first …
          await s.deletePrefix(d.id); // … then its parts
          r.removed.push(d.id);
          log.info({ destination: `${s.kind}:${s.location}`, id: d.id }, 'backup removed by the retention policy');
        }
      }
    } catch (err) {
      r.error = errorMessage(err);
      log.error({ destination: `${s.kind}:${s.location}`, err: r.error }, 'prune failed on this destination');
    }
    results.push(r);
  }
  log.info({ policy: describePolicy(policy), removed: results.reduce((n, x) => n + x.removed.length, 0) }, 'retention applied');
  return results;
}
