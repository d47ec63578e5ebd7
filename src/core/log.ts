/**
 * pino logger on stderr (stdout is for command output such as --json). Pretty on a TTY, JSON otherwise.
 * Secrets are removed twice: by key (redact paths) and by value (every registered secret is scrubbed).
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { scrub, scrubValue } from './redact.ts';

export type { Logger };

const REDACT_PATHS = [
  '*.password', '*.PASSWORD', '*.secret', '*.token', '*.env', '*.Env', '*.identity',
  'password', 'secret', 'token', 'env', 'Env',
];

export function createLogger(level: string, stream: NodeJS.WritableStream = process.stderr): Logger {
  const isTty = (stream as NodeJS.WriteStream).isTTY === true && !process.env.CI;
  const opts: pino.LoggerOptions = {
    level,
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map((a) => (typeof a === 'string' ? scrub(a) : a)) as Parameters<typeof method>);
      },
    },
    formatters: { log: (obj) => scrubValue(obj) },
  };
  const dest = isTty ? pretty({ destination: stream, colorize: true, sync: true, ignore: 'pid,hostname' }) : stream;
  return pino(opts, dest as pino.DestinationStream);
}
