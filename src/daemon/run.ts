/**
 * `dr daemon`: the sidecar's main loop. Backups on the DR_SCHEDULE cron (node-cron, TZ calendar) with an
 * optional random delay; a run still going when the next is due is skipped and counted; the same lock as the
 * CLI, so a manual restore and a scheduled backup never overlap (a held lock skips the run). Serves /metrics
 * and /healthz, notifies on failure (and on success if asked). On start it restarts writers an interrupted
 * run left stopped. SIGTERM/SIGINT: stop scheduling, abort a running backup (which restarts the writers and
 * commits nothing), close the server, exit.
 */
import { createServer, type Server } from 'node:http';
import { hostname } from 'node:os';
import { mkdir } from 'node:fs/promises';
import cron from 'node-cron';
import type { Context } from '../core/context.ts';
import { runBackup } from '../backup/run.ts';
import { DaemonState } from './metrics.ts';
import { notify } from './notify.ts';
import { listAll } from '../repo/catalog.ts';
import { destinations } from '../storage/destinations.ts';
import { recoverStopped } from '../stack/quiesce.ts';
import { DrError, ExitCode, errorMessage } from '../core/errors.ts';
import { scrub } from '../core/redact.ts';
import { runVerify } from '../verify/run.ts';

export async function runDaemon(ctx: Context): Promise<number> {
  const { config, log } = ctx;
  const d = config.daemon;
  if (!cron.validate(d.schedule)) throw new DrError(`DR_SCHEDULE=${JSON.stringify(d.schedule)} is not a valid cron expression`, ExitCode.usage, 'use 5 fields (minute hour day month weekday), e.g. "0 2 * * *"');
  const configured = destinations(config, log);
  const state = new DaemonState(configured.map((s) => ({ kind: s.kind, location: s.location })));
  const tz = config.retentionEnv.TZ || 'UTC';

  // state from the destinations: each one's newest committed backup counts as its last success
  await mkdir(config.localDir, { recursive: true, mode: 0o700 });
  try {
    const { backups, problems } = await listAll(configured);
    for (const b of backups) for (const c of b.copies) state.seedSuccess(c, Date.parse(b.finishedAt));
    if (problems.length) log.warn({ problems: problems.map(scrub) }, 'could not read all existing backups');
  } catch (err) { log.warn({ err: scrub(errorMessage(err)) }, 'could not read the existing backups'); }
  try { await recoverStopped(await ctx.docker(), config.localDir, log); } catch (err) { log.error({ err: errorMessage(err) }, 'could not check for containers left stopped'); }

  let current: Promise<void> | null = null;
  let stopping = false;
  const run = async (reason: string) => {
    if (stopping) return;
    if (state.running) {
      state.skipped++;
      log.warn({ reason }, 'previous backup still running: this run is skipped');
      return;
    }
    state.running = true;
    current = (async () => {
      if (d.jitterSec) await new Promise((r) => setTimeout(r, Math.random() * d.jitterSec * 1000));
      if (stopping) return;
      const t0 = Date.now();
      try {
        const r = await runBackup(ctx, {});
        const m = r.manifest!;
        const copies = r.copies.map((c) => ({ ...c, error: c.error === null ? null : scrub(c.error) }));
        const partial = copies.some((c) => !c.committed);
        if (partial) log.error({ id: m.id, copies }, 'scheduled backup not committed on every destination');
        state.record({
          at: Date.now(), ok: true, partial, error: partial ? copies.filter((c) => !c.committed).map((c) => `${c.kind}: ${c.error}`).join('; ') : null,
          durationSec: m.durationMs / 1000, bytesStored: m.parts.reduce((n, p) => n + p.stored.size, 0), bytesRead: m.parts.filter((p) => p.kind !== 'index').reduce((n, p) => n + p.plain.size, 0),
          parts: m.parts.length, downtimeSec: m.downtime.ms / 1000, copies,
        });
        await notify(config.notify, {
          event: partial ? 'backup.partial' : 'backup.succeeded', host: hostname(), at: new Date().toISOString(), backupId: m.id,
          message: partial ? `backup ${m.id} committed only on some destinations: ${state.last!.error}` : `backup ${m.id} committed (${m.parts.length} parts, ${(m.durationMs / 1000).toFixed(1)} s)`,
          details: { copies, downtimeMs: m.downtime.ms },
        }, log);
      } catch (err) {
        if (err instanceof DrError && err.exitCode === ExitCode.lockHeld) {
          state.skipped++;
          log.warn({ err: errorMessage(err) }, 'the lock is held (a restore or prune?): this run is skipped');
          return;
        }
        const message = scrub(errorMessage(err));
        state.record({ at: Date.now(), ok: false, partial: false, error: message, durationSec: (Date.now() - t0) / 1000, bytesStored: 0, bytesRead: 0, parts: 0, downtimeSec: 0,
          copies: configured.map((s) => ({ kind: s.kind, location: s.location, committed: false, error: message })) });
        log.error({ err: message }, 'scheduled backup failed');
        await notify(config.notify, { event: 'backup.failed', host: hostname(), at: new Date().toISOString(), backupId: null, message: `backup failed: ${message}` }, log);
      }
    })().finally(() => { state.running = false; current = null; });
    await current;
  };

  const task = cron.schedule(d.schedule, () => { void run('scheduled'); }, { timezone: tz });

  // the drill on its own schedule; it shares the "one thing at a time" rule and the lock with backups
  const drill = async () => {
    if (stopping || state.running) { state.skipped++; return; }
    state.running = true;
    current = (async () => {
      try {
        const r = await runVerify(ctx, { latest: true, level: d.verifyLevel });
        state.verify = { at: Date.now(), ok: r.passed, rtoSec: r.rtoSeconds ?? NaN };
        if (!r.passed) log.error({ id: r.id, differences: r.differences }, 'scheduled drill FAILED');
        await notify(config.notify, {
          event: r.passed ? 'verify.succeeded' : 'verify.failed', host: hostname(), at: new Date().toISOString(), backupId: r.id,
          message: r.passed ? `drill (${r.level}) passed for backup ${r.id}` : `drill (${r.level}) FAILED for backup ${r.id}: ${r.differences.slice(0, 3).join('; ')}`,
          details: { level: r.level, rtoSeconds: r.rtoSeconds, rpoSeconds: r.rpoSeconds, differences: r.differences },
        }, log);
      } catch (err) {
        if (err instanceof DrError && err.exitCode === ExitCode.lockHeld) { state.skipped++; return; }
        state.verify = { at: Date.now(), ok: false, rtoSec: NaN };
        const message = scrub(errorMessage(err));
        log.error({ err: message }, 'scheduled drill could not run');
        await notify(config.notify, { event: 'verify.failed', host: hostname(), at: new Date().toISOString(), backupId: null, message: `drill could not run: ${message}` }, log);
      }
    })().finally(() => { state.running = false; current = null; });
    await current;
  };
  if (d.verifySchedule && !cron.validate(d.verifySchedule)) throw new DrError(`DR_VERIFY_SCHEDULE=${JSON.stringify(d.verifySchedule)} is not a valid cron expression`, ExitCode.usage);
  const verifyTask = d.verifySchedule ? cron.schedule(d.verifySchedule, () => { void drill(); }, { timezone: tz }) : null;

  const server: Server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(state.prometheus(d.healthMaxAgeSec));
    } else if (url === '/healthz') {
      const h = state.health(d.healthMaxAgeSec);
      const when = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
      const newest = state.newestSuccess();
      res.writeHead(h.healthy ? 200 : 503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        status: h.healthy ? 'healthy' : 'unhealthy', reason: h.reason, lastSuccess: when(newest), running: state.running,
        destinations: h.destinations.map((x) => ({
          kind: x.kind, location: x.location, healthy: x.healthy, lastSuccess: when(x.lastSuccess), lastFailure: when(x.lastFailure),
          lastError: x.failing ? x.lastError : null, consecutiveFailures: x.consecutiveFailures,
        })),
      }) + '\n');
    } else {
      res.writeHead(404).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => { server.once('error', reject); server.listen(d.port, d.address, () => resolve()); })
    .catch((err: unknown) => { throw new DrError(`dr daemon: cannot listen on ${d.address}:${d.port}: ${errorMessage(err)}`, ExitCode.usage, 'change DR_METRICS_PORT'); });
  log.info({ schedule: d.schedule, timeZone: tz, listen: `${d.address}:${d.port}` }, 'dr daemon started');

  return new Promise<number>((resolve) => {
    const stop = (sig: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal: sig, running: state.running }, 'stopping');
      void task.stop();
      void verifyTask?.stop();
      // a running backup has its own SIGTERM handler: it aborts, restarts the writers and commits nothing
      void (async () => {
        if (current) await current.catch(() => {});
        server.close();
        server.closeAllConnections();
        resolve(state.last && !state.last.ok ? ExitCode.failed : ExitCode.ok);
      })();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}
