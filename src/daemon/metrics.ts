/**
 * The daemon's state, exported as Prometheus text (/metrics) and as a health verdict (/healthz).
 *
 * Each configured destination keeps its own record: the last backup committed there (at start, the newest
 * committed backup found there), the last run that did not commit there, its error and how many runs in a
 * row failed there. The health rule (README, "The sidecar"):
 *   - the last run failed outright (nothing committed anywhere): unhealthy;
 *   - a destination's own last success (or, if it never had one, the daemon's start) is older than
 *     DR_HEALTH_MAX_AGE: unhealthy, naming the destination and its last error;
 *   - otherwise healthy; a destination that failed on the last run is named in the reason (healthy until
 *     its last success gets older than DR_HEALTH_MAX_AGE).
 * A partial run (committed on some destinations only) therefore no longer hides a destination that keeps
 * failing behind the others' successes. Error texts are scrubbed of secrets by the caller.
 */
import type { CopyStatus } from '../storage/destset.ts';

export interface RunRecord { at: number; ok: boolean; partial: boolean; error: string | null; durationSec: number; bytesStored: number; bytesRead: number; parts: number; downtimeSec: number; copies: CopyStatus[] }

export interface DestinationRef { kind: string; location: string }

export interface DestinationRecord extends DestinationRef {
  /** unix ms of the last backup committed there, null if none is known */
  lastSuccess: number | null;
  /** unix ms of the last run that did not commit there */
  lastFailure: number | null;
  /** the error of that run there */
  lastError: string | null;
  /** runs in a row that did not commit there */
  consecutiveFailures: number;
}

export interface DestinationHealth extends DestinationRecord { healthy: boolean; failing: boolean; reason: string }

export interface Health { healthy: boolean; reason: string; destinations: DestinationHealth[] }

/** "42 s", "17 min", "5 h", "3 d" */
export function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  if (s < 120 * 60) return `${Math.round(s / 60)} min`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');

/** One destination's verdict under the rule above (pure). */
export function destinationHealth(d: DestinationRecord, startedAt: number, maxAgeSec: number, now: number): DestinationHealth {
  const where = `${d.kind} ${d.location}`;
  const failing = d.lastFailure !== null && (d.lastSuccess === null || d.lastFailure > d.lastSuccess);
  const since = d.lastSuccess ?? startedAt;
  const stale = now - since > maxAgeSec * 1000;
  const lastError = failing && d.lastError
    ? `; last error (${iso(d.lastFailure!)}, ${d.consecutiveFailures} failed run${d.consecutiveFailures === 1 ? '' : 's'} in a row): ${d.lastError}`
    : '';
  let reason: string;
  if (stale) {
    reason = d.lastSuccess !== null
      ? `no backup committed on ${where} for ${span(now - d.lastSuccess)} (last at ${iso(d.lastSuccess)}; DR_HEALTH_MAX_AGE is ${span(maxAgeSec * 1000)})${lastError}`
      : `no backup committed on ${where} since the daemon started ${span(now - startedAt)} ago (DR_HEALTH_MAX_AGE is ${span(maxAgeSec * 1000)})${lastError}`;
  } else if (failing) {
    reason = `the last backup was not committed on ${where}${lastError}; unhealthy if nothing is committed there by ${iso(since + maxAgeSec * 1000)}`;
  } else {
    reason = d.lastSuccess !== null ? `last backup committed on ${where} at ${iso(d.lastSuccess)}` : `waiting for the first backup on ${where}`;
  }
  return { ...d, healthy: !stale, failing, reason };
}

export class DaemonState {
  readonly startedAt: number;
  private readonly dests = new Map<string, DestinationRecord>();
  last: RunRecord | null = null;
  runs = { success: 0, failure: 0, partial: 0 };
  skipped = 0;
  running = false;
  verify: { at: number; ok: boolean; rtoSec: number } | null = null;

  /** `destinations`: the configured ones (each is judged, even before its first success) */
  constructor(destinations: DestinationRef[] = [], startedAt = Date.now()) {
    this.startedAt = startedAt;
    for (const d of destinations) this.dest(d);
  }

  private dest(d: DestinationRef): DestinationRecord {
    let r = this.dests.get(d.kind);
    if (!r) {
      r = { kind: d.kind, location: d.location, lastSuccess: null, lastFailure: null, lastError: null, consecutiveFailures: 0 };
      this.dests.set(d.kind, r);
    }
    return r;
  }

  destinations(): DestinationRecord[] {
    return [...this.dests.values()].map((d) => ({ ...d }));
  }

  /** A committed backup found on a destination at start: counts as its last success (the newest wins). */
  seedSuccess(d: DestinationRef, at: number): void {
    if (!Number.isFinite(at)) return;
    const r = this.dest(d);
    if (r.lastSuccess === null || at > r.lastSuccess) r.lastSuccess = at;
  }

  record(r: RunRecord): void {
    this.last = r;
    if (r.ok && !r.partial) this.runs.success++; else if (r.partial) this.runs.partial++; else this.runs.failure++;
    const copies: CopyStatus[] = r.copies.length ? r.copies
      : [...this.dests.values()].map((d) => ({ kind: d.kind, location: d.location, committed: false, error: r.error }));
    for (const c of copies) {
      const d = this.dest(c);
      if (c.committed) {
        d.lastSuccess = r.at;
        d.consecutiveFailures = 0;
      } else {
        d.lastFailure = r.at;
        d.lastError = c.error ?? r.error ?? 'not committed';
        d.consecutiveFailures++;
      }
    }
  }

  newestSuccess(): number | null {
    const all = [...this.dests.values()].map((d) => d.lastSuccess).filter((x): x is number => x !== null);
    return all.length ? Math.max(...all) : null;
  }

  health(maxAgeSec: number, now = Date.now()): Health {
    const destinations = [...this.dests.values()].map((d) => destinationHealth(d, this.startedAt, maxAgeSec, now));
    if (this.last && !this.last.ok) return { healthy: false, reason: `the last backup failed: ${this.last.error}`, destinations };
    const bad = destinations.filter((d) => !d.healthy);
    if (bad.length) return { healthy: false, reason: bad.map((d) => d.reason).join('; '), destinations };
    if (!destinations.length) {
      // no destination known (cannot happen with a configuration): the old global rule
      const stale = now - this.startedAt > maxAgeSec * 1000;
      return { healthy: !stale, reason: stale ? 'no successful backup since the daemon started' : 'waiting for the first scheduled backup', destinations };
    }
    const failing = destinations.filter((d) => d.failing);
    if (failing.length) return { healthy: true, reason: failing.map((d) => d.reason).join('; '), destinations };
    if (destinations.every((d) => d.lastSuccess !== null)) return { healthy: true, reason: 'last backup succeeded on every destination', destinations };
    return { healthy: true, reason: 'waiting for the first scheduled backup', destinations };
  }

  prometheus(maxAgeSec: number, now = Date.now()): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of samples) out.push(`${name}${labels} ${Number.isFinite(v) ? v : 'NaN'}`);
    };
    const h = this.health(maxAgeSec, now);
    const dest = (f: (d: DestinationHealth) => number) => h.destinations.map((d) => [`{destination="${d.kind}"}`, f(d)] as [string, number]);
    metric('dr_backup_last_success_timestamp_seconds', 'gauge', 'Time of the last backup committed on the destination (0: none known).', dest((d) => (d.lastSuccess ?? 0) / 1000));
    metric('dr_backup_last_failure_timestamp_seconds', 'gauge', 'Time of the last backup run that did not commit on the destination (0: none).', dest((d) => (d.lastFailure ?? 0) / 1000));
    metric('dr_backup_destination_consecutive_failures', 'gauge', 'Backup runs in a row that did not commit on the destination.', dest((d) => d.consecutiveFailures));
    metric('dr_destination_healthy', 'gauge', '1 unless the destination\'s last success (or the daemon\'s start) is older than DR_HEALTH_MAX_AGE.', dest((d) => (d.healthy ? 1 : 0)));
    const l = this.last;
    metric('dr_backup_last_duration_seconds', 'gauge', 'Duration of the last backup run.', [['', l?.durationSec ?? NaN]]);
    metric('dr_backup_last_bytes_stored', 'gauge', 'Bytes stored (compressed, encrypted) by the last backup, per copy.', [['', l?.bytesStored ?? NaN]]);
    metric('dr_backup_last_bytes_read', 'gauge', 'Bytes read from the stack (plaintext) by the last backup.', [['', l?.bytesRead ?? NaN]]);
    metric('dr_backup_last_parts', 'gauge', 'Parts in the last backup.', [['', l?.parts ?? NaN]]);
    metric('dr_backup_last_downtime_seconds', 'gauge', 'Writers\' downtime during the last backup.', [['', l?.downtimeSec ?? NaN]]);
    metric('dr_backup_last_success', 'gauge', '1 if the last backup run succeeded on every destination.', [['', l ? (l.ok && !l.partial ? 1 : 0) : NaN]]);
    metric('dr_backup_runs_total', 'counter', 'Backup runs by result.', Object.entries(this.runs).map(([k, v]) => [`{result="${k}"}`, v]));
    metric('dr_backup_skipped_runs_total', 'counter', 'Scheduled runs skipped because a run was still going or the lock was held.', [['', this.skipped]]);
    metric('dr_backup_running', 'gauge', '1 while a backup runs.', [['', this.running ? 1 : 0]]);
    metric('dr_verify_last_success', 'gauge', '1 if the last verify passed (NaN until one ran).', [['', this.verify ? (this.verify.ok ? 1 : 0) : NaN]]);
    metric('dr_verify_last_rto_seconds', 'gauge', 'Restore time measured by the last verify (NaN until one ran).', [['', this.verify?.rtoSec ?? NaN]]);
    metric('dr_healthy', 'gauge', '1 when /healthz is healthy.', [['', h.healthy ? 1 : 0]]);
    return out.join('\n') + '\n';
  }
}
