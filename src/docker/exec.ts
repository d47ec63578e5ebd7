/**
 * `docker exec` through the API. Secrets travel in the exec's environment (sent over the socket, never in
 * any argv). Output is demultiplexed with backpressure: the raw stream is only read while both outputs
 * accept data (dockerode's demuxStream ignores backpressure).
 */
import { PassThrough, Readable, type Writable } from 'node:stream';
import type Docker from 'dockerode';
import { DrError, errorMessage } from '../core/errors.ts';
import { drained } from '../core/streams.ts';
import { scrub } from '../core/redact.ts';

export interface ExecOptions {
  cmd: string[];
  /** extra environment, e.g. { MYSQL_PWD: '...' } */
  env?: Record<string, string>;
  user?: string;
  workingDir?: string;
}

export interface ExecStreams {
  stdout: Readable;
  stderr: Readable;
  /** resolves with the exit code once the process has ended and its output has been consumed */
  exitCode: Promise<number>;
}

/**
 * Parses Docker's multiplexed stream (8-byte header: stream type, 3 zero bytes, big-endian length) and
 * writes each payload to `out` or `err` as it arrives, awaiting 'drain' whenever a target is full.
 */
export async function demux(raw: AsyncIterable<Buffer>, out: Writable, err: Writable): Promise<void> {
  const header = Buffer.alloc(8);
  let have = 0; // header bytes collected
  let remaining = 0; // payload bytes left in the current frame
  let target: Writable = out;
  for await (let chunk of raw) {
    while (chunk.length > 0) {
      if (remaining === 0) {
        const n = Math.min(8 - have, chunk.length);
        chunk.copy(header, have, 0, n);
        have += n;
        chunk = chunk.subarray(n);
        if (have < 8) break;
        have = 0;
        remaining = header.readUInt32BE(4);
        target = header[0] === 2 ? err : out;
        continue;
      }
      const n = Math.min(remaining, chunk.length);
      const payload = chunk.subarray(0, n);
      chunk = chunk.subarray(n);
      remaining -= n;
      if (!target.write(payload)) await drained(target);
    }
  }
  if (have !== 0 || remaining !== 0) throw new Error('exec output ended in the middle of a frame');
}

/** Starts a command in a running container; the caller consumes stdout/stderr and awaits exitCode. */
export async function execStream(container: Docker.Container, opts: ExecOptions): Promise<ExecStreams> {
  const exec = await container.exec({
    Cmd: opts.cmd,
    Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
    AttachStdout: true,
    AttachStderr: true,
    AttachStdin: false,
    Tty: false,
    ...(opts.user ? { User: opts.user } : {}),
    ...(opts.workingDir ? { WorkingDir: opts.workingDir } : {}),
  });
  const raw = (await exec.start({ hijack: true, stdin: false })) as unknown as Readable;
  const stdout = new PassThrough({ highWaterMark: 1 << 20 });
  const stderr = new PassThrough({ highWaterMark: 1 << 20 });
  // a consumer that gives up early (e.g. the destination failed) closes the exec's socket: the process then
  // gets EPIPE instead of blocking forever
  const abandon = () => { if (!raw.destroyed) raw.destroy(); };
  stdout.on('close', () => { if (!stdout.readableEnded) abandon(); });
  const pumped = demux(raw, stdout, stderr).then(
    () => { stdout.end(); stderr.end(); },
    (e: unknown) => { stdout.destroy(e as Error); stderr.destroy(e as Error); throw e; },
  );
  const exitCode = (async () => {
    await pumped;
    for (let i = 0; i < 100; i++) {
      const info = await exec.inspect();
      if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) return info.ExitCode;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('exec did not report an exit code');
  })();
  exitCode.catch(() => {}); // observed by the caller
  return { stdout, stderr, exitCode };
}

/**
 * The command's stdout as a byte stream that errors (instead of ending) when the command exits non-zero,
 * so a failed dump can never be stored as if complete. stderr is drained concurrently; its tail goes into
 * the error message (secrets scrubbed).
 */
export function checkedStdout(s: ExecStreams, name: string, what: string): Readable {
  let tail = '';
  s.stderr.on('data', (c: Buffer) => { tail = (tail + c.toString('utf8')).slice(-4000); });
  async function* gen(): AsyncGenerator<Buffer> {
    for await (const c of s.stdout) yield c as Buffer;
    const code = await s.exitCode;
    if (code !== 0) {
      const detail = scrub(tail.trim().split('\n').slice(-3).join(' | ')) || 'no error output';
      throw new DrError(`${name}: ${what} failed (exit ${code}): ${detail}`);
    }
  }
  return Readable.from(gen(), { objectMode: false });
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs a short command and collects its output (capped at `limit` bytes per stream). */
export async function execCollect(container: Docker.Container, opts: ExecOptions, limit = 4 << 20): Promise<ExecResult> {
  const s = await execStream(container, opts);
  const collect = async (r: Readable) => {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const c of r) {
      if (size < limit) parts.push(c as Buffer);
      size += (c as Buffer).length;
    }
    return Buffer.concat(parts).subarray(0, limit).toString('utf8');
  };
  const [stdout, stderr, exitCode] = await Promise.all([collect(s.stdout), collect(s.stderr), s.exitCode]);
  return { exitCode, stdout, stderr };
}

/** execCollect that throws a DrError naming the container when the command fails. */
export async function execChecked(container: Docker.Container, name: string, what: string, opts: ExecOptions): Promise<string> {
  let r: ExecResult;
  try {
    r = await execCollect(container, opts);
  } catch (err) {
    throw new DrError(`${name}: ${what} failed: ${scrub(errorMessage(err))}`);
  }
  if (r.exitCode !== 0) {
    const detail = scrub(r.stderr.trim().split('\n').slice(-3).join(' | ')) || `exit code ${r.exitCode}`;
    throw new DrError(`${name}: ${what} failed (exit ${r.exitCode}): ${detail}`);
  }
  return r.stdout;
}

/**
 * Runs a command with `input` streamed to its stdin (e.g. a dump replayed into a client), collecting the
 * output (capped). stdin is half-closed when `input` ends, as `docker exec -i` does.
 */
export async function execWithInput(container: Docker.Container, opts: ExecOptions, input: Readable, limit = 1 << 20): Promise<ExecResult> {
  const exec = await container.exec({
    Cmd: opts.cmd,
    Env: Object.entries(opts.env ?? {}).map(([k, v]) => `${k}=${v}`),
    AttachStdout: true, AttachStderr: true, AttachStdin: true, Tty: false,
    ...(opts.user ? { User: opts.user } : {}),
  });
  const sock = (await exec.start({ hijack: true, stdin: true })) as unknown as import('node:net').Socket;
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  let outSize = 0;
  let errSize = 0;
  const cap = (arr: Buffer[], get: () => number, add: (n: number) => void) => new PassThrough().on('data', (c: Buffer) => { if (get() < limit) arr.push(c); add(c.length); });
  const so = cap(out, () => outSize, (n) => { outSize += n; });
  const se = cap(err, () => errSize, (n) => { errSize += n; });
  const pumpIn = (async () => {
    try {
      for await (const c of input) {
        if (!sock.write(c as Buffer)) await drained(sock);
      }
      sock.end();
    } catch (e) {
      sock.destroy();
      throw e;
    }
  })();
  const pumpOut = demux(sock, so, se);
  await Promise.all([pumpIn, pumpOut]);
  so.end(); se.end();
  let code: number | null = null;
  for (let i = 0; i < 100 && code === null; i++) {
    const info = await exec.inspect();
    if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) code = info.ExitCode;
    else await new Promise((r) => setTimeout(r, 50));
  }
  if (code === null) throw new Error('exec did not report an exit code');
  return { exitCode: code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}
