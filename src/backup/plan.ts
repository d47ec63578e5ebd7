/**
 * What a backup will do, decided before anything is touched: its settings (recipients, signing key,
 * retention variables: every problem at once), whether it may run (no unfinished restore), and its plan
 * (which volumes are archived live, which while their writers are down, which are covered by dumps).
 */
import type { KeyObject } from 'node:crypto';
import type { Context } from '../core/context.ts';
import { ConfigError } from '../core/config.ts';
import { DrError, ExitCode, errorMessage } from '../core/errors.ts';
import { parseRecipients } from '../codec/age/index.ts';
import type { PartOptions } from '../codec/write.ts';
import { loadSigningKey } from '../repo/trust.ts';
import { retentionPolicy } from '../repo/prune.ts';
import { unverifiedTargets } from '../repo/restore-journal.ts';
import type { Discovery } from '../stack/discover.ts';

export interface BackupPlan {
  id: string;
  mode: 'hot' | 'cold';
  destination: string;
  dumps: { container: string; engine: string; databases: string[] }[];
  /** archived before anything is stopped (no running writer mounts them) */
  hotVolumes: string[];
  /** archived while `stop` are stopped */
  quiescedVolumes: string[];
  /** covered by a logical dump (hot mode) */
  dumpedVolumes: { volume: string; container: string }[];
  stop: string[];
  /** `stop` grouped into waves: the containers of one wave are stopped (and started) together */
  waves: string[][];
  /** how the app writers are quiesced (DR_QUIESCE); the databases' wave of cold mode is always stopped */
  quiesce: 'stop' | 'pause';
  compression: string;
  recipients: string[];
}

export interface Settings { recipients: string[]; signingKey: KeyObject; partOpts: PartOptions }

/** Everything that can be checked before touching anything; all problems at once. */
export function settingsFor(ctx: Context): Settings {
  const c = ctx.config;
  const problems: string[] = [];
  // the retention variables are checked by every backup, not only by the first prune weeks later
  try { retentionPolicy(c); } catch (err) { problems.push(...(err instanceof ConfigError ? err.problems : [errorMessage(err)])); }
  let recipients: string[] = [];
  if (!c.recipients) problems.push('DR_AGE_RECIPIENTS (or DR_AGE_RECIPIENTS_FILE) is required by dr backup: the age recipients (age1…) to encrypt to; create a key pair with dr keygen');
  else {
    try { recipients = parseRecipients(c.recipients.text, c.recipients.source); } catch (err) { problems.push(errorMessage(err)); }
  }
  let signingKey: KeyObject | undefined;
  if (!c.signingKeyFile) problems.push('DR_SIGNING_KEY_FILE is required by dr backup: the ed25519 key that signs manifests; create it with dr keygen');
  else {
    try { signingKey = loadSigningKey(c.signingKeyFile); } catch (err) { problems.push(errorMessage(err)); }
  }
  if (problems.length) throw new ConfigError(problems);
  return { recipients, signingKey: signingKey!, partOpts: { compression: c.compression, zstdLevel: c.zstdLevel, recipients } };
}

export function planBackup(report: Discovery, mode: 'hot' | 'cold', id: string, ctx: Context, recipients: string[]): BackupPlan {
  const dbs = report.databases;
  const waves = [...report.stopWaves, ...(mode === 'cold' && dbs.length ? [dbs.map((d) => d.container)] : [])];
  const stop = waves.flat();
  const stopped = new Set(stop);
  const volumes = report.volumes.filter((v) => !v.excluded);
  const dumpedVolumes: BackupPlan['dumpedVolumes'] = [];
  const hot: string[] = [];
  const quiesced: string[] = [];
  for (const v of volumes) {
    if (v.role === 'database' && mode === 'hot') {
      dumpedVolumes.push({ volume: v.name, container: v.mountedBy.find((m) => dbs.some((d) => d.container === m.container))!.container });
      continue;
    }
    if (v.mountedBy.some((m) => stopped.has(m.container))) quiesced.push(v.name);
    else hot.push(v.name);
  }
  return {
    id, mode, destination: ctx.config.localDir,
    dumps: dbs.map((d) => ({ container: d.container, engine: d.engine, databases: d.databases })),
    hotVolumes: hot, quiescedVolumes: quiesced, dumpedVolumes, stop, waves, quiesce: ctx.config.quiesce,
    compression: ctx.config.compression, recipients,
  };
}

/** A backup of half-restored volumes would be kept by the retention policy as if it were the stack: refused. */
export async function refuseDuringRestore(dir: string): Promise<void> {
  const { journal, targets } = await unverifiedTargets(dir);
  if (journal && targets.size) {
    throw new DrError(`a restore of backup ${journal.id} did not finish: volumes ${[...targets].join(', ')} are not restored and verified; refusing to back them up`, ExitCode.failed,
      `finish the restore first: ${journal.resume}`);
  }
}
