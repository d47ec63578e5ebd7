/**
 * One backup/restore/prune at a time per destination: an exclusive lock file in the local backup directory.
 * The holder refreshes the file's mtime every few seconds; a lock not refreshed for DR_LOCK_STALE_SECONDS is
 * stale (its holder died — also across PID namespaces, e.g. sidecar vs host) and is taken over; on the same
 * host a lock whose holder's PID no longer exists is stale at once.
 */
import { open, readFile, rm, stat, utimes, rename } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DrError, ExitCode } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { stage } from '../core/hooks.ts';

export interface LockInfo { pid: number; host: string; command: string; startedAt: string }

export interface Lock { release(): Promise<void>; info: LockInfo }

/** Is the process that wrote `info` known to be gone? Only answerable on the same host (same PID namespace). */
function holderDead(info: LockInfo | null): boolean {
  if (!info || info.host !== hostname() || info.pid === process.pid) return false;
  try {
    process.kill(info.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** The lock file's holder (null when unreadable), its age, and whether it may be taken over; null when absent. */
async function readLock(path: string, staleSeconds: number): Promise<{ holder: LockInfo | null; ageSec: number; stale: boolean; dead: boolean } | null> {
  const st = await stat(path).catch(() => null);
  if (!st) return null;
  const holder = await readFile(path, 'utf8').then((t) => JSON.parse(t) as LockInfo).catch(() => null);
  const ageSec = (Date.now() - st.mtimeMs) / 1000;
  const dead = holderDead(holder);
  return { holder, ageSec, stale: ageSec > staleSeconds || dead, dead };
}

/** The live holder of the lock in `dir`, or null when it is free, stale, or its holder is gone. */
export async function lockHolder(dir: string, staleSeconds: number): Promise<LockInfo | null> {
  const l = await readLock(join(dir, '.lock'), staleSeconds);
  if (!l || l.stale) return null;
  return l.holder ?? { pid: 0, host: '?', command: 'another dr process', startedAt: '?' };
}

export async function acquireLock(dir: string, command: string, staleSeconds: number, log: Logger): Promise<Lock> {
  const path = join(dir, '.lock');
  const info: LockInfo = { pid: process.pid, host: hostname(), command, startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(JSON.stringify(info) + '\n');
      await fh.sync();
      await fh.close();
      const beat = setInterval(() => { const now = new Date(); utimes(path, now, now).catch(() => {}); }, Math.max(1000, (staleSeconds * 1000) / 4));
      beat.unref();
      await stage('locked');
      let released = false;
      return {
        info,
        release: async () => {
          if (released) return;
          released = true;
          clearInterval(beat);
          await rm(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const l = await readLock(path, staleSeconds);
      const holder = l?.holder ?? null;
      if (!l || l.stale) {
        log.warn({ lock: path, holder, ageSec: Math.round(l?.ageSec ?? 0) }, l?.dead ? 'taking over a stale lock (its holder, on this host, is gone)' : 'taking over a stale lock (its holder stopped refreshing it)');
        // rename first so that two takers cannot both remove a fresh lock
        await rename(path, `${path}.stale-${process.pid}`).then(() => rm(`${path}.stale-${process.pid}`, { force: true }), () => {});
        continue;
      }
      const who = holder ? `${holder.command} (pid ${holder.pid} on ${holder.host}, since ${holder.startedAt})` : 'another dr process';
      throw new DrError(`the destination ${dir} is locked by ${who}`, ExitCode.lockHeld,
        `wait for it to finish; a lock whose holder died is taken over after ${staleSeconds}s`);
    }
  }
  throw new DrError(`could not take the lock ${path}`, ExitCode.lockHeld);
}
