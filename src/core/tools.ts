/**
 * Stock tools as stream stages, where they are faster than what Node does in-process: GNU tar reads and
 * writes a local volume directory far faster than the Docker archive API (zstd runs in-process: see
 * src/codec/write.ts). Each stage is a Duplex whose failure (exit code, stderr) fails the stream.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { Duplex, PassThrough, type Readable } from 'node:stream';
import { access, constants } from 'node:fs/promises';
import { DrError } from './errors.ts';

const cache = new Map<string, boolean>();
export function hasTool(name: string): boolean {
  if (process.env[`DR_NO_${name.toUpperCase()}_CLI`]) return false;
  if (!cache.has(name)) cache.set(name, spawnSync(name, ['--version'], { stdio: 'ignore' }).status === 0);
  return cache.get(name)!;
}

/** `cmd args` as a Duplex: what is written goes to its stdin, its stdout is read. Non-zero exit → error. */
export function toolStage(cmd: string, args: string[], what: string, okCodes: number[] = [0]): Duplex {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
  const d = Duplex.from({ writable: child.stdin, readable: child.stdout });
  child.on('error', (e) => d.destroy(new DrError(`${what}: ${e.message}`)));
  child.on('close', (code) => {
    if (code !== null && !okCodes.includes(code)) d.destroy(new DrError(`${what} failed (exit ${code}): ${err.trim().split('\n').slice(-2).join(' | ')}`));
    // a tool that stops reading early would leave the writer waiting forever: that is an error, not a hang
    else if (!child.stdin.writableFinished && !child.stdin.destroyed && !d.destroyed) d.destroy(new DrError(`${what} exited before reading all of its input`));
  });
  d.on('close', () => { if (child.exitCode === null) child.kill(); });
  return d;
}

/** exit code of a gated tool whose gate was closed without a go */
const GATE_CLOSED = 97;

/**
 * `cmd args` whose stdout is the stream (no input; a non-zero exit outside okCodes fails the stream),
 * started now but held until `go()`: a shell waits for a line on its stdin, then execs `cmd`.
 * Starting a process costs ~10–30 ms here (fork of a 100+ MB Node process, more for the first ones), which
 * a caller spends before a time-critical moment (the writers' downtime) instead of within it. Destroying
 * the stream before `go()` ends the waiting shell.
 */
export function gatedToolSource(cmd: string, args: string[], what: string, okCodes: number[] = [0]): { stream: Readable; go(): Readable } {
  const child = spawn('sh', ['-c', `read -r go || exit ${GATE_CLOSED}; exec "$0" "$@"`, cmd, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {}); // a shell that is gone is reported through its exit
  const stream = sourceOf(child, what, okCodes);
  stream.on('error', () => {}); // an early failure waits in the stream for whoever reads it (pipeline sees it)
  return { stream, go: () => { child.stdin.end('go\n'); return stream; } };
}

function sourceOf(child: ChildProcess, what: string, okCodes: number[]): Readable {
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err = (err + d.toString()).slice(-2000); });
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  child.stdout!.pipe(out, { end: false });
  child.on('error', (e) => out.destroy(new DrError(`${what}: ${e.message}`)));
  child.on('close', (code) => {
    if (code !== null && okCodes.includes(code)) out.end();
    else out.destroy(new DrError(`${what} failed (exit ${code}): ${err.trim().split('\n').slice(-2).join(' | ')}`));
  });
  out.on('close', () => { if (child.exitCode === null) child.kill(); });
  return out;
}

/** The volume's directory on this host when we can read (and, with `write`, write) it directly. */
export async function localMountpoint(mountpoint: string | undefined, write = false): Promise<string | null> {
  if (!mountpoint || process.env.DR_NO_DIRECT_VOLUME_ACCESS || !hasTool('tar')) return null;
  return access(mountpoint, write ? constants.R_OK | constants.W_OK : constants.R_OK).then(() => mountpoint, () => null);
}
