/**
 * Configuration: `DR_*` variables from the process environment and an optional `.env` file (the process
 * environment wins, as with docker compose). Every secret also accepts `<NAME>_FILE` (Docker secrets).
 * All problems are collected and reported at once, each naming its variable.
 */
import { readFileSync, existsSync } from 'node:fs';
import { parseEnv } from 'node:util';
import { availableParallelism } from 'node:os';
import { DrError, ExitCode } from './errors.ts';
import { registerSecret } from './redact.ts';

export type Env = Record<string, string | undefined>;

type Kind = 'string' | 'int' | 'bool' | 'enum' | 'list' | 'path';
export interface VarSpec {
  name: string;
  kind: Kind;
  help: string;
  default?: string;
  required?: boolean;
  secret?: boolean;
  /** also accept <NAME>_FILE (implied for secrets) */
  file?: boolean;
  values?: readonly string[];
  pattern?: RegExp;
  patternHelp?: string;
  min?: number;
  max?: number;
}

export type ConfigValue = string | number | boolean | string[] | undefined;

export const DEFAULT_VOLUME_SUFFIXES = [
  'glpi_files', 'glpi_plugins', 'glpi_config', 'glpi_marketplace', 'glpi_db_data',
  'chatwoot_storage', 'chatwoot_db_data', 'chatwoot_redis_data',
] as const;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/** Every variable `dr` reads. README.md's configuration table is written from this list. */
export const SCHEMA: readonly VarSpec[] = [
  { name: 'DR_VOLUME_PREFIX', kind: 'string', default: 'v2_', pattern: /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
    patternHelp: 'letters, digits, "_", "." or "-", starting with a letter or digit',
    help: 'Prefix of the stack\'s containers and volumes; nothing without it is ever touched.' },
  { name: 'DR_EXPECTED_VOLUMES', kind: 'list',
    help: 'Comma-separated volume names that must exist (default: the 8 volumes of the helpdesk stack under DR_VOLUME_PREFIX).' },
  { name: 'DR_INCLUDE_RESTORED', kind: 'bool', default: 'false',
    help: 'Back up the volumes a side-by-side restore made (dr restore --suffix, labelled dr.restored-from) like the stack\'s own. Default: left out, and listed by dr status as leftovers; a single one is backed up when DR_EXPECTED_VOLUMES lists it or a stack container mounts it. Drill scratch volumes and --force\'s _pre-restore_ copies are never backed up.' },
  { name: 'DR_LOCAL_DIR', kind: 'path', default: '/var/backups/helpdesk-dr',
    help: 'Local backup directory (the default destination).' },
  { name: 'DR_DOCKER_SOCKET', kind: 'path',
    help: 'Path of the Docker engine\'s socket (default: from DOCKER_HOST, else /var/run/docker.sock).' },
  { name: 'DOCKER_HOST', kind: 'string', pattern: /^(unix:\/\/\/.+|tcp:\/\/[^/]+:\d+\/?)$/,
    patternHelp: 'unix:///path/to/docker.sock or tcp://host:port',
    help: 'Standard Docker variable, honoured when DR_DOCKER_SOCKET is not set.' },
  { name: 'DR_DOCKER_TIMEOUT', kind: 'int', default: '10', min: 1, max: 600,
    help: 'Seconds to wait for the Docker engine to answer a ping.' },
  { name: 'DR_LOG_LEVEL', kind: 'enum', default: 'info', values: LOG_LEVELS, help: 'Log level (logs go to stderr).' },
  { name: 'DR_AGE_RECIPIENTS', kind: 'string', file: true,
    help: 'age recipients (age1…) every part is encrypted to: comma, space or newline separated; or a file of them in DR_AGE_RECIPIENTS_FILE. Required by dr backup.' },
  { name: 'DR_SIGNING_KEY_FILE', kind: 'path',
    help: 'ed25519 private key (PEM) that signs manifests, made by dr keygen. Required by dr backup.' },
  { name: 'DR_AGE_IDENTITY_FILE', kind: 'path',
    help: 'age identity file (from dr keygen) that decrypts backups. Required by dr restore; keep it off the backed-up host.' },
  { name: 'DR_SIGNING_PUBLIC_KEY', kind: 'string', pattern: /^[A-Za-z0-9+/]{43}=$/, patternHelp: 'a base64 ed25519 public key (44 characters)',
    help: 'Trusted manifest signer (default: the key recorded in DR_AGE_IDENTITY_FILE by dr keygen).' },
  { name: 'DR_HEALTH_TIMEOUT', kind: 'int', default: '300', min: 10, max: 3600,
    help: 'Seconds dr restore waits for the restarted stack to become healthy.' },
  { name: 'DR_S3_BUCKET', kind: 'string', pattern: /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, patternHelp: 'an S3 bucket name (3–63 lowercase letters, digits, "." or "-")',
    help: 'S3 bucket: setting it adds the S3 destination (next to the local one).' },
  { name: 'DR_S3_ENDPOINT', kind: 'string', pattern: /^https?:\/\/[^\s/]+(\/.*)?$/, patternHelp: 'a URL like https://s3.example.com or http://127.0.0.1:9000',
    help: 'S3 endpoint URL (empty: AWS).' },
  { name: 'DR_S3_REGION', kind: 'string', default: 'us-east-1', help: 'S3 region.' },
  { name: 'DR_S3_PREFIX', kind: 'string', default: '', pattern: /^[A-Za-z0-9!_.*'()\/-]*$/, patternHelp: 'safe S3 key characters', help: 'Key prefix (folder) of the backups in the bucket.' },
  { name: 'DR_S3_ACCESS_KEY_ID', kind: 'string', secret: true, help: 'S3 access key id (default: the AWS credential chain).' },
  { name: 'DR_S3_SECRET_ACCESS_KEY', kind: 'string', secret: true, help: 'S3 secret access key.' },
  { name: 'DR_S3_FORCE_PATH_STYLE', kind: 'bool', default: 'false', help: 'Path-style addressing (MinIO and most self-hosted S3 need true).' },
  { name: 'DR_S3_SSE', kind: 'enum', values: ['AES256', 'aws:kms'], help: 'Server-side encryption (optional; parts are age-encrypted anyway).' },
  { name: 'DR_S3_STORAGE_CLASS', kind: 'string', pattern: /^[A-Z_]+$/, patternHelp: 'an S3 storage class like STANDARD_IA', help: 'Storage class of the objects (optional).' },
  { name: 'DR_S3_PART_SIZE_MB', kind: 'int', default: '8', min: 5, max: 512, help: 'Multipart upload part size in MiB (memory per upload: about twice this).' },
  { name: 'DR_S3_MAX_ATTEMPTS', kind: 'int', default: '5', min: 1, max: 20, help: 'Attempts per S3 request (backoff with jitter between them).' },
  { name: 'DR_S3_TIMEOUT_SECONDS', kind: 'int', default: '60', min: 1, max: 3600, help: 'An S3 request that sends or receives nothing for this long is abandoned and retried (a stalled server cannot hang a backup).' },
  { name: 'DR_PRUNE_AFTER_BACKUP', kind: 'bool', default: 'false', help: 'Apply the retention policy after each successful backup.' },
  { name: 'DR_KEEP_LAST', kind: 'string', help: 'Retention: keep the N newest backups (see README, Retention).' },
  { name: 'DR_KEEP_HOURLY', kind: 'string', help: 'Retention: newest backup of each of the last N hours.' },
  { name: 'DR_KEEP_DAILY', kind: 'string', help: 'Retention: newest backup of each of the last N days.' },
  { name: 'DR_KEEP_WEEKLY', kind: 'string', help: 'Retention: newest backup of each of the last N ISO weeks.' },
  { name: 'DR_KEEP_MONTHLY', kind: 'string', help: 'Retention: newest backup of each of the last N months.' },
  { name: 'DR_KEEP_YEARLY', kind: 'string', help: 'Retention: newest backup of each of the last N years.' },
  { name: 'DR_KEEP_WITHIN', kind: 'string', help: 'Retention: keep everything newer than this duration before the newest backup (e.g. 7d, 1m, 1y2m).' },
  { name: 'TZ', kind: 'string', help: 'Time zone of the retention calendar (and of the schedule).' },
  { name: 'DR_SCHEDULE', kind: 'string', default: '0 2 * * *', help: 'dr daemon: cron schedule of the backups (5 fields, or 6 with seconds), in TZ.' },
  { name: 'DR_SCHEDULE_JITTER_SECONDS', kind: 'int', default: '0', min: 0, max: 86400, help: 'dr daemon: random delay before each scheduled backup.' },
  { name: 'DR_METRICS_PORT', kind: 'int', default: '9464', min: 1, max: 65535, help: 'dr daemon: port of /metrics and /healthz.' },
  { name: 'DR_METRICS_ADDRESS', kind: 'string', default: '0.0.0.0', pattern: /^[0-9a-fA-F.:]+$/, patternHelp: 'an IP address to listen on', help: 'dr daemon: address of /metrics and /healthz.' },
  { name: 'DR_HEALTH_MAX_AGE', kind: 'string', default: '26h', pattern: /^\d+[smhd]?$/, patternHelp: 'a duration like 26h, 90m or 3600 (seconds)',
    help: 'dr daemon: /healthz is unhealthy when the last successful backup is older than this.' },
  { name: 'DR_VERIFY_SCHEDULE', kind: 'string', help: 'dr daemon: cron schedule of the drill (dr verify --latest); needs DR_AGE_IDENTITY_FILE in the sidecar.' },
  { name: 'DR_VERIFY_LEVEL', kind: 'enum', default: 'read', values: ['quick', 'read', 'full'], help: 'dr daemon: level of the scheduled drill.' },
  { name: 'DR_WEBHOOK_URL', kind: 'string', secret: true, pattern: /^https?:\/\/\S+$/, patternHelp: 'an http(s) URL', help: 'Notifications: URL that receives a JSON POST on failure (and on success with DR_NOTIFY_ON_SUCCESS).' },
  { name: 'DR_TELEGRAM_BOT_TOKEN', kind: 'string', secret: true, help: 'Notifications: Telegram bot token.' },
  { name: 'DR_TELEGRAM_CHAT_ID', kind: 'string', help: 'Notifications: Telegram chat id.' },
  { name: 'DR_TELEGRAM_API_URL', kind: 'string', default: 'https://api.telegram.org', pattern: /^https?:\/\/\S+$/, patternHelp: 'an http(s) URL', help: 'Notifications: Telegram Bot API base URL.' },
  { name: 'DR_NOTIFY_ON_SUCCESS', kind: 'bool', default: 'false', help: 'Notifications: also on success.' },
  { name: 'DR_COMPRESSION', kind: 'enum', default: 'zstd', values: ['zstd', 'gzip', 'none'], help: 'Compression of the parts.' },
  { name: 'DR_ZSTD_LEVEL', kind: 'int', default: '1', min: 1, max: 19, help: 'zstd level (on the benchmark mix of SQL text and attachments, 1 was both smaller and faster than 3).' },
  { name: 'DR_MODE', kind: 'enum', default: 'hot', values: ['hot', 'cold'],
    help: 'hot: databases keep running and are covered by logical dumps; cold: databases are stopped too and their raw volumes archived as well.' },
  { name: 'DR_PARALLELISM', kind: 'int', min: 1, max: 32, help: 'Parts processed at once (default: the number of CPU cores).' },
  { name: 'DR_QUIESCE', kind: 'enum', default: 'stop', values: ['stop', 'pause'],
    help: 'How a backup quiesces the app writers: stop them (a clean shutdown; their start-up counts as downtime) or pause them (docker pause: downtime is the archiving alone, but a write in progress is frozen half-done). Databases are never paused; restores always stop.' },
  { name: 'DR_STOP_TIMEOUT', kind: 'int', default: '30', min: 1, max: 3600, help: 'Seconds a writer gets to stop before it is killed.' },
  { name: 'DR_LOCK_STALE_SECONDS', kind: 'int', default: '120', min: 10, max: 86400,
    help: 'A lock not refreshed for this long belongs to a dead process and is taken over.' },
  { name: 'DR_INCOMPLETE_GRACE_SECONDS', kind: 'int', default: '3600', min: 0, max: 604800,
    help: 'Uncommitted backups (no manifest) older than this are removed by the next backup.' },
];

/** An S3 destination's settings (src/storage/s3.ts). */
export interface S3Settings {
  endpoint?: string;
  region: string;
  bucket: string;
  prefix: string;
  accessKeyId?: string;
  secretAccessKey?: string;
  forcePathStyle: boolean;
  sse?: string;
  storageClass?: string;
  partSizeMB: number;
  maxAttempts: number;
  /** idle timeout of one request, seconds */
  timeoutSec?: number;
  /** page size asked for in listings (MaxKeys, MaxUploads; S3's own limit is 1000); tests use small pages */
  pageSize?: number;
}

export interface Config {
  volumePrefix: string;
  expectedVolumes: string[];
  /** DR_INCLUDE_RESTORED: back up volumes a --suffix restore made */
  includeRestored: boolean;
  localDir: string;
  docker: { socketPath: string } | { host: string; port: number };
  dockerTimeoutSec: number;
  logLevel: (typeof LOG_LEVELS)[number];
  recipients: { text: string; source: string } | undefined;
  signingKeyFile: string | undefined;
  identityFile: string | undefined;
  signingPublicKey: string | undefined;
  healthTimeoutSec: number;
  s3: S3Settings | undefined;
  pruneAfterBackup: boolean;
  daemon: { schedule: string; jitterSec: number; port: number; address: string; healthMaxAgeSec: number; verifySchedule?: string; verifyLevel: 'quick' | 'read' | 'full' };
  notify: { webhookUrl?: string; telegram?: { token: string; chatId: string; apiUrl: string }; onSuccess: boolean };
  /** the raw DR_KEEP_* values and TZ, validated by the retention module */
  retentionEnv: Record<string, string | undefined>;
  compression: 'zstd' | 'gzip' | 'none';
  zstdLevel: number;
  mode: 'hot' | 'cold';
  parallelism: number;
  stopTimeoutSec: number;
  quiesce: 'stop' | 'pause';
  lockStaleSec: number;
  incompleteGraceSec: number;
}

export class ConfigError extends DrError {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(
      `configuration has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` + problems.map((p) => `  - ${p}`).join('\n'),
      ExitCode.usage,
      'fix the variables above in the environment or in .env (see .env.example and README.md, "Configuration")',
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Reads `.env` (path from DR_ENV_FILE, default ./.env) beneath the process environment.
 * A missing default .env is fine; a missing DR_ENV_FILE is a problem.
 */
export function loadEnv(processEnv: Env = process.env, cwd = process.cwd()): Env {
  const explicit = processEnv.DR_ENV_FILE;
  const path = explicit || `${cwd}/.env`;
  if (!existsSync(path)) {
    if (explicit) throw new ConfigError([`DR_ENV_FILE: file ${explicit} does not exist`]);
    return { ...processEnv };
  }
  let fromFile: Record<string, string>;
  try {
    fromFile = parseEnv(readFileSync(path, 'utf8')) as Record<string, string>;
  } catch (err) {
    throw new ConfigError([`${explicit ? 'DR_ENV_FILE' : '.env'}: cannot read ${path}: ${(err as Error).message}`]);
  }
  return { ...fromFile, ...processEnv };
}

/** Parses and validates `env` against `schema`; returns typed values by name or throws ConfigError. */
export function parseVars(env: Env, schema: readonly VarSpec[] = SCHEMA): Map<string, ConfigValue> {
  const problems: string[] = [];
  const out = new Map<string, ConfigValue>();
  for (const spec of schema) {
    let raw = env[spec.name];
    const fileVar = `${spec.name}_FILE`;
    if ((spec.secret || spec.file) && env[fileVar]) {
      if (raw) {
        problems.push(`${spec.name} and ${fileVar} are both set: set only one`);
        continue;
      }
      try {
        raw = readFileSync(env[fileVar]!, 'utf8').replace(/\r?\n$/, '');
      } catch (err) {
        problems.push(`${fileVar}: cannot read ${env[fileVar]} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
        continue;
      }
      if (!raw) {
        problems.push(`${fileVar}: file ${env[fileVar]} is empty`);
        continue;
      }
    }
    if (raw !== undefined) raw = raw.trim();
    if (!raw) raw = spec.default;
    if (raw === undefined || raw === '') {
      if (spec.required) problems.push(`${spec.name} is required but not set${spec.secret ? ` (or set ${fileVar})` : ''}: ${spec.help}`);
      out.set(spec.name, undefined);
      continue;
    }
    if (spec.secret) registerSecret(raw);
    const shown = spec.secret ? '(secret value)' : JSON.stringify(raw);
    switch (spec.kind) {
      case 'int': {
        if (!/^-?\d+$/.test(raw)) { problems.push(`${spec.name}=${shown} is not a whole number`); break; }
        const n = Number(raw);
        if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
          problems.push(`${spec.name}=${shown} is out of range ${spec.min ?? '-∞'}..${spec.max ?? '∞'}`);
          break;
        }
        out.set(spec.name, n);
        break;
      }
      case 'bool': {
        const v = raw.toLowerCase();
        if (['1', 'true', 'yes', 'on'].includes(v)) out.set(spec.name, true);
        else if (['0', 'false', 'no', 'off'].includes(v)) out.set(spec.name, false);
        else problems.push(`${spec.name}=${shown} is not a boolean (use true or false)`);
        break;
      }
      case 'enum':
        if (!spec.values!.includes(raw)) problems.push(`${spec.name}=${shown} is not one of: ${spec.values!.join(', ')}`);
        else out.set(spec.name, raw);
        break;
      case 'list': {
        const items = raw.split(',').map((s) => s.trim()).filter(Boolean);
        const bad = spec.pattern ? items.filter((i) => !spec.pattern!.test(i)) : [];
        if (bad.length) problems.push(`${spec.name}: ${bad.map((b) => JSON.stringify(b)).join(', ')} not allowed (${spec.patternHelp})`);
        else out.set(spec.name, items);
        break;
      }
      case 'path':
        if (!raw.startsWith('/') && !raw.startsWith('./') && !raw.startsWith('../')) {
          problems.push(`${spec.name}=${shown} must be an absolute path (or start with ./)`);
        } else out.set(spec.name, raw);
        break;
      case 'string':
        if (spec.pattern && !spec.pattern.test(raw)) problems.push(`${spec.name}=${shown} is malformed: expected ${spec.patternHelp}`);
        else out.set(spec.name, raw);
        break;
    }
  }
  if (problems.length) throw new ConfigError(problems);
  return out;
}

/** The whole configuration, validated. Throws ConfigError listing every problem. */
export function readConfig(env: Env): Config {
  const v = parseVars(env);
  const prefix = v.get('DR_VOLUME_PREFIX') as string;
  const expected = (v.get('DR_EXPECTED_VOLUMES') as string[] | undefined) ?? DEFAULT_VOLUME_SUFFIXES.map((s) => prefix + s);
  const problems: string[] = [];
  const outside = expected.filter((name) => !name.startsWith(prefix));
  if (outside.length) problems.push(`DR_EXPECTED_VOLUMES: ${outside.join(', ')} do not start with DR_VOLUME_PREFIX=${JSON.stringify(prefix)}`);
  let docker: Config['docker'] = { socketPath: '/var/run/docker.sock' };
  const socket = v.get('DR_DOCKER_SOCKET') as string | undefined;
  const host = v.get('DOCKER_HOST') as string | undefined;
  if (socket) docker = { socketPath: socket };
  else if (host?.startsWith('unix://')) docker = { socketPath: host.slice('unix://'.length) };
  else if (host) {
    const m = /^tcp:\/\/([^/:]+):(\d+)/.exec(host)!;
    docker = { host: m[1]!, port: Number(m[2]) };
  }
  const s3Vars = ['DR_S3_ENDPOINT', 'DR_S3_PREFIX', 'DR_S3_ACCESS_KEY_ID', 'DR_S3_SECRET_ACCESS_KEY'].filter((n) => env[n]?.trim() || env[`${n}_FILE`]);
  if (!v.get('DR_S3_BUCKET') && s3Vars.length) problems.push(`DR_S3_BUCKET is not set although ${s3Vars.join(', ')} ${s3Vars.length > 1 ? 'are' : 'is'}: set the bucket to enable the S3 destination`);
  if (!!v.get('DR_S3_ACCESS_KEY_ID') !== !!v.get('DR_S3_SECRET_ACCESS_KEY')) problems.push('DR_S3_ACCESS_KEY_ID and DR_S3_SECRET_ACCESS_KEY must be set together (or neither, for the AWS credential chain)');
  if (!!v.get('DR_TELEGRAM_BOT_TOKEN') !== !!v.get('DR_TELEGRAM_CHAT_ID')) problems.push('DR_TELEGRAM_BOT_TOKEN and DR_TELEGRAM_CHAT_ID must be set together');
  if (problems.length) throw new ConfigError(problems);
  return {
    volumePrefix: prefix,
    expectedVolumes: expected,
    includeRestored: v.get('DR_INCLUDE_RESTORED') as boolean,
    localDir: v.get('DR_LOCAL_DIR') as string,
    docker,
    dockerTimeoutSec: v.get('DR_DOCKER_TIMEOUT') as number,
    logLevel: v.get('DR_LOG_LEVEL') as Config['logLevel'],
    recipients: v.get('DR_AGE_RECIPIENTS') === undefined ? undefined : {
      text: v.get('DR_AGE_RECIPIENTS') as string,
      source: env.DR_AGE_RECIPIENTS?.trim() ? 'DR_AGE_RECIPIENTS' : `DR_AGE_RECIPIENTS_FILE (${env.DR_AGE_RECIPIENTS_FILE})`,
    },
    signingKeyFile: v.get('DR_SIGNING_KEY_FILE') as string | undefined,
    identityFile: v.get('DR_AGE_IDENTITY_FILE') as string | undefined,
    signingPublicKey: v.get('DR_SIGNING_PUBLIC_KEY') as string | undefined,
    healthTimeoutSec: v.get('DR_HEALTH_TIMEOUT') as number,
    s3: v.get('DR_S3_BUCKET') ? {
      bucket: v.get('DR_S3_BUCKET') as string,
      ...(v.get('DR_S3_ENDPOINT') ? { endpoint: v.get('DR_S3_ENDPOINT') as string } : {}),
      region: v.get('DR_S3_REGION') as string,
      prefix: (v.get('DR_S3_PREFIX') as string | undefined) ?? '',
      ...(v.get('DR_S3_ACCESS_KEY_ID') ? { accessKeyId: v.get('DR_S3_ACCESS_KEY_ID') as string } : {}),
      ...(v.get('DR_S3_SECRET_ACCESS_KEY') ? { secretAccessKey: v.get('DR_S3_SECRET_ACCESS_KEY') as string } : {}),
      forcePathStyle: v.get('DR_S3_FORCE_PATH_STYLE') as boolean,
      ...(v.get('DR_S3_SSE') ? { sse: v.get('DR_S3_SSE') as string } : {}),
      ...(v.get('DR_S3_STORAGE_CLASS') ? { storageClass: v.get('DR_S3_STORAGE_CLASS') as string } : {}),
      partSizeMB: v.get('DR_S3_PART_SIZE_MB') as number,
      maxAttempts: v.get('DR_S3_MAX_ATTEMPTS') as number,
      timeoutSec: v.get('DR_S3_TIMEOUT_SECONDS') as number,
    } : undefined,
    pruneAfterBackup: v.get('DR_PRUNE_AFTER_BACKUP') as boolean,
    daemon: {
      schedule: v.get('DR_SCHEDULE') as string,
      jitterSec: v.get('DR_SCHEDULE_JITTER_SECONDS') as number,
      port: v.get('DR_METRICS_PORT') as number,
      address: v.get('DR_METRICS_ADDRESS') as string,
      healthMaxAgeSec: durationSeconds(v.get('DR_HEALTH_MAX_AGE') as string),
      ...(v.get('DR_VERIFY_SCHEDULE') ? { verifySchedule: v.get('DR_VERIFY_SCHEDULE') as string } : {}),
      verifyLevel: v.get('DR_VERIFY_LEVEL') as 'quick' | 'read' | 'full',
    },
    notify: {
      ...(v.get('DR_WEBHOOK_URL') ? { webhookUrl: v.get('DR_WEBHOOK_URL') as string } : {}),
      ...(v.get('DR_TELEGRAM_BOT_TOKEN') ? { telegram: { token: v.get('DR_TELEGRAM_BOT_TOKEN') as string, chatId: v.get('DR_TELEGRAM_CHAT_ID') as string, apiUrl: v.get('DR_TELEGRAM_API_URL') as string } } : {}),
      onSuccess: v.get('DR_NOTIFY_ON_SUCCESS') as boolean,
    },
    // every DR_KEEP_* (so that a misspelt rule is reported by the retention module) and TZ
    retentionEnv: Object.fromEntries(Object.keys(env).filter((n) => n.startsWith('DR_KEEP_') || n === 'TZ').map((n) => [n, env[n]])),
    compression: v.get('DR_COMPRESSION') as Config['compression'],
    zstdLevel: v.get('DR_ZSTD_LEVEL') as number,
    mode: v.get('DR_MODE') as Config['mode'],
    parallelism: (v.get('DR_PARALLELISM') as number | undefined) ?? availableParallelism(),
    stopTimeoutSec: v.get('DR_STOP_TIMEOUT') as number,
    quiesce: v.get('DR_QUIESCE') as Config['quiesce'],
    lockStaleSec: v.get('DR_LOCK_STALE_SECONDS') as number,
    incompleteGraceSec: v.get('DR_INCOMPLETE_GRACE_SECONDS') as number,
  };
}

/** "26h" → 93600; "90m", "45s", "2d", or plain seconds. */
export function durationSeconds(s: string): number {
  const m = /^(\d+)([smhd]?)$/.exec(s.trim());
  if (!m) throw new Error(`bad duration ${s}`);
  return Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86400 } as Record<string, number>)[m[2]!]!;
}

export function describeDocker(d: Config['docker']): string {
  return 'socketPath' in d ? `unix://${d.socketPath}` : `tcp://${d.host}:${d.port}`;
}
