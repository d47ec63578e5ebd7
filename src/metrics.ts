/** The daemon's state, exported as Prometheus text (/metrics) and as a health verdict (/healthz). */
import type { CopyStatus } from './storage/destset.ts';

export interface RunRecord { at: number; ok: boolean; partial: boolean; error: string | null; durationSec: number; bytesStored: number; bytesRead: number; parts: number; downtimeSec: number; copies: CopyStatus[] }

export class DaemonState {
  readonly startedAt = Date.now();
  lastSuccess = new Map<string, number>(); // destination → unix ms
  lastFailure = new Map<string, number>();
  last: RunRecord | null = null;
  runs = { success: 0, failure: 0, partial: 0 };
  skipped = 0;
  running = false;
  verify: { at: number; ok: boolean; rtoSec: number } | null = null;

  record(r: RunRecord): void {
    this.last = r;
    if (r.ok && !r.partial) this.runs.success++; else if (r.partial) this.runs.partial++; else this.runs.failure++;
    for (const c of r.copies) {
      if (c.committed) this.lastSuccess.set(c.kind, r.at); else this.lastFailure.set(c.kind, r.at);
    }
    if (!r.copies.length && !r.ok) this.lastFailure.set('all', r.at);
  }

  newestSuccess(): number | null {
    return this.lastSuccess.size ? Math.max(...this.lastSuccess.values()) : null;
  }

  health(maxAgeSec: number, now = Date.now()): { healthy: boolean; reason: string } {
    if (this.last && !this.last.ok) return { healthy: false, reason: `the last backup failed: ${this.last.error}` };
    const newest = this.newestSuccess();
    const since = newest ?? this.startedAt;
    if ((now - since) / 1000 > maxAgeSec) {
      return { healthy: false, reason: newest ? `the last successful backup is ${Math.round((now - newest) / 3600000)} h old` : 'no successful backup since the daemon started' };
    }
    return { healthy: true, reason: newest ? 'last backup succeeded' : 'waiting for the first scheduled backup' };
  }

  prometheus(maxAgeSec: number): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of samples) out.push(`${name}${labels} ${Number.isFinite(v) ? v : 'NaN'}`);
    };
    const dest = (m: Map<string, number>) => [...m].map(([k, v]) => [`{destination="${k}"}`, v / 1000] as [string, number]);
    metric('dr_backup_last_success_timestamp_seconds', 'gauge', 'Time of the last backup committed on the destination.', dest(this.lastSuccess));
    metric('dr_backup_last_failure_timestamp_seconds', 'gauge', 'Time of the last backup that failed on the destination.', dest(this.lastFailure));
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
    metric('dr_healthy', 'gauge', '1 when /healthz is healthy.', [['', this.health(maxAgeSec).healthy ? 1 : 0]]);
    return out.join('\n') + '\n';
  }
}
