/**
 * Stopping and restarting the writers. Before a container is stopped it is recorded in a journal file next
 * to the backups; the journal is removed once everything runs again. If dr dies in between (kill -9, power
 * cut), the next dr command finds the journal and starts the containers again (recoverStopped).
 *
 * A backup may pause writers instead (DR_QUIESCE=pause: the cgroup freezer, `docker pause`): no process
 * exits, so there is no shutdown and no start-up in the writers' downtime (~0.8 s here for three
 * containers), only the archiving. The price: a write a writer had in progress is frozen half-done, where a
 * stop lets it finish or abandon it first. Databases are never paused (they are dumped, or stopped in cold
 * mode), and restores always stop.
 */
import { readFile, writeFile, rm, rename } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { Logger } from '../core/log.ts';
import { errorMessage } from '../core/errors.ts';
import { existsSync } from 'node:fs';
import { lockHolder } from '../repo/lock.ts';
import { unverifiedTargets } from '../repo/restore-journal.ts';

const JOURNAL = '.dr-stopped.json';

export type QuiesceHow = 'stop' | 'pause';
export interface StoppedRecord { name: string; stoppedAt: string; startedAt: string | null; wave: number; how: QuiesceHow }

async function readJournal(dir: string): Promise<string[]> {
  const text = await readFile(join(dir, JOURNAL), 'utf8').catch(() => null);
  if (!text) return [];
  try { return (JSON.parse(text) as { containers: string[] }).containers; } catch { return []; /* unreadable: drop it */ }
}

/** Records `names` as stopped by dr, together with any already recorded (left stopped by an unfinished restore). */
async function writeJournal(dir: string, names: string[]): Promise<void> {
  await setJournal(dir, [...new Set([...(await readJournal(dir)), ...names])]);
}

/** Replaces the journal with exactly `names` (removes it when empty). */
async function setJournal(dir: string, names: string[]): Promise<void> {
  if (!names.length) { await rm(join(dir, JOURNAL), { force: true }); return; }
  const tmp = join(dir, `${JOURNAL}.tmp`);
  await writeFile(tmp, JSON.stringify({ pid: process.pid, containers: names, at: new Date().toISOString() }) + '\n', { mode: 0o600 });
  await rename(tmp, join(dir, JOURNAL));
}

/** Containers recorded as stopped by an interrupted run. */
export const stoppedByDr = readJournal;

/** The first of `volumes` that the container mounts, if any. */
async function mountsAny(c: Docker.Container, volumes: Set<string>): Promise<string | null> {
  if (!volumes.size) return null;
  const st = await c.inspect();
  return st.Mounts.find((m) => m.Type === 'volume' && m.Name && volumes.has(m.Name))?.Name ?? null;
}

/**
 * Starts containers that an interrupted run left stopped — except those that mount a volume an unfinished
 * restore has not verified (src/repo/restore-journal.ts): they stay stopped, and stay in the journal, until that
 * restore is finished. Returns the names started.
 */
export async function recoverStopped(docker: Docker, dir: string, log: Logger): Promise<string[]> {
  const names = await readJournal(dir);
  if (!names.length) { await rm(join(dir, JOURNAL), { force: true }); return []; }
  let held: Set<string>;
  let restoreId: string | null = null;
  let resume = '';
  try {
    const u = await unverifiedTargets(dir);
    held = u.targets;
    restoreId = u.journal?.id ?? null;
    resume = u.journal?.resume ?? '';
  } catch (err) {
    log.error({ err: errorMessage(err) }, 'an unfinished restore left an unreadable journal: no container is started');
    return [];
  }
  const started: string[] = [];
  const kept: string[] = [];
  for (const name of [...names].reverse()) {
    try {
      const c = docker.getContainer(name);
      const on = await mountsAny(c, held);
      if (on) {
        kept.unshift(name);
        log.warn({ container: name, volume: on, restore: restoreId }, `not started: volume ${on} is not restored and verified yet (the restore of backup ${restoreId} did not finish); resume it: ${resume}`);
        continue;
      }
      const st = await c.inspect();
      if (st.State.Paused) { await c.unpause(); started.push(name); } else if (!st.State.Running) { await c.start(); started.push(name); }
    } catch (err) {
      log.error({ container: name, err: errorMessage(err) }, 'could not restart a container left stopped by an interrupted run');
    }
  }
  if (started.length) log.warn({ containers: started }, 'restarted containers left stopped by an interrupted run');
  await setJournal(dir, kept);
  return started;
}

/**
 * For every command (cli.ts): when a journal says containers were left stopped and no live dr process holds
 * the lock (so no backup or restore is in its stop window right now), start them again.
 */
export async function recoverIfIdle(dir: string, staleSeconds: number, docker: () => Promise<Docker>, log: Logger): Promise<string[]> {
  if (!existsSync(join(dir, JOURNAL))) return [];
  const holder = await lockHolder(dir, staleSeconds);
  if (holder) return [];
  return recoverStopped(await docker(), dir, log);
}

export class Quiescer {
  private readonly docker: Docker;
  private readonly dir: string;
  private readonly log: Logger;
  private readonly timeoutSec: number;
  readonly stopped: StoppedRecord[] = [];
  private readonly waves: string[][] = [];
  private firstStop = 0;
  private lastStart = 0;
  /** a restore sets it: containers it returns a reason for are never started (not even by the safety nets) */
  holdIf: (name: string) => string | null = () => null;

  constructor(docker: Docker, journalDir: string, log: Logger, timeoutSec: number) {
    this.docker = docker;
    this.dir = journalDir;
    this.log = log;
    this.timeoutSec = timeoutSec;
  }

  /**
   * Stops (or pauses) running containers wave by wave (stopWavesOf: the containers of one wave together, a
   * wave only after the one before is down); containers already stopped or paused are left alone (and never
   * started). `how(wave index)` says whether a wave is stopped or paused.
   */
  async stop(waves: string[][], how: (wave: number) => QuiesceHow = () => 'stop'): Promise<void> {
    for (const [i, wave] of waves.entries()) {
      const running: string[] = [];
      const mode = how(i);
      for (const name of wave) {
        const st = await this.docker.getContainer(name).inspect();
        if (st.State.Running && !st.State.Paused) running.push(name);
        else this.log.info({ container: name }, `not running: nothing to ${mode}`);
      }
      if (!running.length) continue;
      await writeJournal(this.dir, [...this.stopped.map((s) => s.name), ...running]);
      process.on('beforeExit', this.safetyNet);
      process.on('uncaughtException', this.onCrash);
      if (!this.firstStop) this.firstStop = Date.now();
      const wi = this.waves.length;
      this.waves.push(running);
      for (const name of running) this.stopped.push({ name, stoppedAt: new Date().toISOString(), startedAt: null, wave: wi, how: mode });
      const results = await Promise.allSettled(running.map(async (name) => {
        const c = this.docker.getContainer(name);
        if (mode === 'pause') await c.pause();
        else await c.stop({ t: this.timeoutSec }).catch((err: { statusCode?: number }) => { if (err.statusCode !== 304) throw err; });
        this.log.info({ container: name }, mode === 'pause' ? 'paused' : 'stopped');
      }));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
  }

  /**
   * Starts everything stopped, wave by wave in reverse (a wave's containers together); never throws — returns
   * the failures. `hold(name)` returns a reason to leave a container stopped (a restore: it mounts a volume
   * not verified); held containers stay in the journal.
   */
  async restartAll(hold: (name: string) => string | null = this.holdIf): Promise<string[]> {
    const failures: string[] = [];
    const held: string[] = [];
    for (let wi = this.waves.length - 1; wi >= 0; wi--) {
      await Promise.all(this.stopped.filter((rec) => rec.wave === wi && !rec.startedAt).map(async (rec) => {
        const why = hold(rec.name);
        if (why) { held.push(rec.name); this.log.warn({ container: rec.name }, `left stopped: ${why}`); return; }
        try {
          const c = this.docker.getContainer(rec.name);
          if (rec.how === 'pause') await c.unpause();
          else await c.start().catch((err: { statusCode?: number }) => { if (err.statusCode !== 304) throw err; });
          rec.startedAt = new Date().toISOString();
          this.log.info({ container: rec.name }, rec.how === 'pause' ? 'unpaused' : 'started');
        } catch (err) {
          const cmd = rec.how === 'pause' ? 'docker unpause' : 'docker start';
          failures.push(`${rec.name}: could not be ${rec.how === 'pause' ? 'unpaused' : 'started again'}: ${errorMessage(err)} (run: ${cmd} ${rec.name})`);
        }
      }));
    }
    if (this.firstStop) this.lastStart = Date.now();
    if (this.stopped.every((r) => r.startedAt || held.includes(r.name))) {
      process.off('beforeExit', this.safetyNet);
      process.off('uncaughtException', this.onCrash);
    }
    if (failures.length === 0) {
      // what an earlier restore left stopped (and this run did not start) stays recorded, with what this one holds
      const mine = new Set(this.stopped.map((r) => r.name));
      await setJournal(this.dir, [...(await readJournal(this.dir)).filter((n) => !mine.has(n)), ...held]);
    }
    return failures;
  }

  /**
   * Last line of defence: if dr is about to exit (its event loop ran dry: some stage hung without a timer)
   * while containers it stopped are still down, start them and fail the run.
   */
  private readonly safetyNet = (): void => {
    process.off('beforeExit', this.safetyNet);
    this.log.error({ containers: this.stopped.filter((r) => !r.startedAt).map((r) => r.name) }, 'dr was about to exit with containers still stopped: starting them');
    process.exitCode = 1;
    void this.restartAll();
  };

  /** A programming error thrown while containers are down: start them before dying. */
  private readonly onCrash = (err: Error): void => {
    process.off('uncaughtException', this.onCrash);
    this.log.error({ err: errorMessage(err), containers: this.stopped.filter((r) => !r.startedAt).map((r) => r.name) }, 'dr crashed with containers stopped: starting them, then exiting');
    void this.restartAll().finally(() => process.exit(1));
  };

  downtimeMs(): number {
    return this.firstStop ? (this.lastStart || Date.now()) - this.firstStop : 0;
  }
}
