import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DaemonState, destinationHealth, span, type RunRecord } from '../../src/daemon/metrics.ts';
import type { CopyStatus } from '../../src/storage/destset.ts';

const H = 3600_000;
const T0 = Date.parse('2026-12-01T00:00:00Z');
const MAX = 26 * 3600; // DR_HEALTH_MAX_AGE=26h
const LOCAL = { kind: 'local', location: '/backups' };
const S3 = { kind: 's3', location: 's3://bucket/helpdesk/' };

function run(at: number, copies: CopyStatus[], ok = true): RunRecord {
  const partial = ok && copies.some((c) => !c.committed);
  return { at, ok, partial, error: ok ? (partial ? copies.filter((c) => !c.committed).map((c) => `${c.kind}: ${c.error}`).join('; ') : null) : 'dump failed',
    durationSec: 1, bytesStored: 1, bytesRead: 1, parts: 1, downtimeSec: 0, copies };
}
const ok = (d: typeof LOCAL): CopyStatus => ({ ...d, committed: true, error: null });
const bad = (d: typeof LOCAL, error: string): CopyStatus => ({ ...d, committed: false, error });
const metric = (text: string, name: string, dest: string) => Number(new RegExp(`^${name}\\{destination="${dest}"\\} (\\S+)$`, 'm').exec(text)?.[1]);

test('S3 keeps failing while local succeeds: unhealthy once S3\'s own last success is older than the threshold, naming s3 and its error', () => {
  const s = new DaemonState([LOCAL, S3], T0);
  s.seedSuccess(LOCAL, T0 - 2 * H);
  s.seedSuccess(S3, T0 - 2 * H);
  assert.equal(s.health(MAX, T0).healthy, true);
  // nightly runs: local commits, S3 fails every time
  const s3down = () => bad(S3, 'S3 s3://bucket/helpdesk/: upload of x failed: AccessDenied');
  s.record(run(T0 + 12 * H, [ok(LOCAL), s3down()]));
  // right after the first failure: S3's last success is 14 h old → still healthy, but the reason names s3
  let h = s.health(MAX, T0 + 12 * H + 1000);
  assert.equal(h.healthy, true);
  assert.match(h.reason, /not committed on s3 s3:\/\/bucket\/helpdesk\/.*AccessDenied.*unhealthy if nothing is committed there by 2026-12-02T00:00:00Z/);
  s.record(run(T0 + 24 * H, [ok(LOCAL), s3down()]));
  s.record(run(T0 + 36 * H, [ok(LOCAL), s3down()]));
  // 36 h after start: S3's last success is 38 h old → unhealthy, although local succeeded a minute ago
  h = s.health(MAX, T0 + 36 * H + 60_000);
  assert.equal(h.healthy, false);
  assert.match(h.reason, /^no backup committed on s3 s3:\/\/bucket\/helpdesk\/ for 38 h \(last at 2026-11-30T22:00:00Z; DR_HEALTH_MAX_AGE is 26 h\); last error \(2026-12-02T12:00:00Z, 3 failed runs in a row\): .*AccessDenied/);
  assert.doesNotMatch(h.reason, /local/);
  const l = h.destinations.find((d) => d.kind === 'local')!;
  const x = h.destinations.find((d) => d.kind === 's3')!;
  assert.deepEqual([l.healthy, l.lastSuccess, l.consecutiveFailures], [true, T0 + 36 * H, 0]);
  assert.deepEqual([x.healthy, x.lastSuccess, x.lastFailure, x.consecutiveFailures], [false, T0 - 2 * H, T0 + 36 * H, 3]);
  // the metrics carry each destination's own last success and failure
  const m = s.prometheus(MAX, T0 + 36 * H + 60_000);
  assert.equal(metric(m, 'dr_backup_last_success_timestamp_seconds', 'local'), (T0 + 36 * H) / 1000);
  assert.equal(metric(m, 'dr_backup_last_success_timestamp_seconds', 's3'), (T0 - 2 * H) / 1000);
  assert.equal(metric(m, 'dr_backup_last_failure_timestamp_seconds', 's3'), (T0 + 36 * H) / 1000);
  assert.equal(metric(m, 'dr_backup_last_failure_timestamp_seconds', 'local'), 0);
  assert.equal(metric(m, 'dr_backup_destination_consecutive_failures', 's3'), 3);
  assert.equal(metric(m, 'dr_destination_healthy', 's3'), 0);
  assert.equal(metric(m, 'dr_destination_healthy', 'local'), 1);
  assert.match(m, /^dr_healthy 0$/m);
  assert.match(m, /^dr_backup_runs_total\{result="partial"\} 3$/m);
  // S3 is back: one run committed on both → healthy, no error shown
  s.record(run(T0 + 48 * H, [ok(LOCAL), ok(S3)]));
  h = s.health(MAX, T0 + 48 * H + 1000);
  assert.equal(h.healthy, true);
  assert.equal(h.reason, 'last backup succeeded on every destination');
  assert.equal(h.destinations.find((d) => d.kind === 's3')!.consecutiveFailures, 0);
});

test('a destination that never had a backup counts from the daemon\'s start; waiting is healthy until the threshold', () => {
  const s = new DaemonState([LOCAL, S3], T0);
  s.seedSuccess(LOCAL, T0 - H);
  let h = s.health(MAX, T0 + H);
  assert.equal(h.healthy, true);
  assert.equal(h.reason, 'waiting for the first scheduled backup');
  s.record(run(T0 + 2 * H, [ok(LOCAL), bad(S3, 'connect ECONNREFUSED 127.0.0.1:9')]));
  h = s.health(MAX, T0 + 27 * H);
  assert.equal(h.healthy, false);
  assert.match(h.reason, /^no backup committed on s3 s3:\/\/bucket\/helpdesk\/ since the daemon started 27 h ago \(DR_HEALTH_MAX_AGE is 26 h\); last error \(.*, 1 failed run in a row\): connect ECONNREFUSED/);
  assert.equal(metric(s.prometheus(MAX, T0 + 27 * H), 'dr_backup_last_success_timestamp_seconds', 's3'), 0, 'never: 0, so an age alert fires');
  // local is stale too only when its own last success is old
  h = s.health(MAX, T0 + 2 * H + MAX * 1000 + 1000);
  assert.match(h.reason, /no backup committed on local \/backups for 26 h/);
});

test('a run that failed outright is unhealthy at once; every destination records the failure', () => {
  const s = new DaemonState([LOCAL, S3], T0);
  s.seedSuccess(LOCAL, T0);
  s.seedSuccess(S3, T0);
  s.record(run(T0 + H, [bad(LOCAL, 'dump failed'), bad(S3, 'dump failed')], false));
  const h = s.health(MAX, T0 + H + 1);
  assert.equal(h.healthy, false);
  assert.equal(h.reason, 'the last backup failed: dump failed');
  assert.deepEqual(h.destinations.map((d) => [d.kind, d.lastFailure, d.lastError]), [['local', T0 + H, 'dump failed'], ['s3', T0 + H, 'dump failed']]);
  // a failed run without per-destination status counts against every configured destination
  s.record({ ...run(T0 + 2 * H, [], false), copies: [] });
  assert.deepEqual(s.destinations().map((d) => d.consecutiveFailures), [2, 2]);
  assert.match(s.prometheus(MAX, T0 + 2 * H), /^dr_backup_runs_total\{result="failure"\} 2$/m);
});

test('seeding keeps each destination\'s newest committed backup; an old failure before a success is not failing', () => {
  const s = new DaemonState([LOCAL, S3], T0);
  s.seedSuccess(S3, T0 - 5 * H);
  s.seedSuccess(S3, T0 - 9 * H);
  s.seedSuccess(S3, Number.NaN);
  assert.equal(s.destinations().find((d) => d.kind === 's3')!.lastSuccess, T0 - 5 * H);
  const d = destinationHealth({ ...S3, lastSuccess: T0, lastFailure: T0 - H, lastError: 'old', consecutiveFailures: 0 }, T0, MAX, T0 + H);
  assert.deepEqual([d.healthy, d.failing], [true, false]);
  assert.doesNotMatch(d.reason, /old/);
  assert.equal(span(42_000), '42 s');
  assert.equal(span(17 * 60_000), '17 min');
  assert.equal(span(5 * H), '5 h');
  assert.equal(span(72 * H), '3 d');
});
