/**
 * `dr verify`: the drill. Levels build on each other:
 *   quick  manifest signature; every part present with the recorded stored size and SHA-256
 *   read   + every part (or the deterministic subset n/t: part i belongs to subset i mod t + 1, in key order)
 *          downloaded, decrypted, decompressed; plaintext size and SHA-256; volume archives' entries
 *          sanitised and compared with the per-file index
 *   full   + a real restore side by side (unique suffix, throwaway DB containers, per-file and per-table
 *          comparison — src/restore/run.ts with --suffix), timed (RTO); everything it created is removed,
 *          also when the drill fails or is interrupted. The live stack is never stopped or touched.
 * Every difference is reported with its location (part, file path, table).
 */
import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type Docker from 'dockerode';
import type { Context } from '../core/context.ts';
import { checkTrustedSignature, requireTrust, UntrustedSignerError, type TrustedSigner } from '../repo/trust.ts';
import { acquireLock } from '../repo/lock.ts';
import { locateBackup, readManifest } from '../repo/catalog.ts';
import { selectDestinations } from '../storage/destinations.ts';
import { FORMAT, type Manifest, type PartRecord } from '../repo/manifest.ts';
import { checkStoredPart, readPart, loadIndex, tarChecker } from '../codec/read.ts';
import { runRestore } from '../restore/run.ts';
import { HELPER_LABEL } from '../docker/volumes.ts';
import { DrError, ExitCode, errorMessage } from '../core/errors.ts';
import { identitiesFrom } from '../codec/keys.ts';

export type Level = 'quick' | 'read' | 'full';
export interface Check { level: Level; subject: string; check: string; ok: boolean; detail: string }
export interface VerifyReport {
  id: string;
  from: string;
  level: Level;
  subset: string | null;
  startedAt: string;
  backupFinishedAt: string;
  rpoSeconds: number;
  rtoSeconds: number | null;
  durationSeconds: number;
  passed: boolean;
  /** the manifest's signer, when the signature check passed, and what made it trusted */
  signer: TrustedSigner | null;
  checks: Check[];
  differences: string[];
}

export function parseSubset(s: string | undefined): { n: number; t: number } | null {
  if (!s) return null;
  const m = /^(\d+)\/(\d+)$/.exec(s);
  const n = Number(m?.[1]);
  const t = Number(m?.[2]);
  if (!m || t < 1 || n < 1 || n > t) throw new DrError(`--subset ${s}: use n/t with 1 ≤ n ≤ t, e.g. 1/3 (t runs with n = 1..t cover every part once)`, ExitCode.usage);
  return { n, t };
}

/** The parts of subset n of t: part i (in key order) belongs to subset (i mod t) + 1. */
export function subsetOf(parts: PartRecord[], subset: { n: number; t: number } | null): PartRecord[] {
  const sorted = [...parts].sort((a, b) => a.key.localeCompare(b.key));
  return subset ? sorted.filter((_, i) => (i % subset.t) + 1 === subset.n) : sorted;
}

/** Removes what a drill created: scratch volumes labelled dr.drill=<tag> and the temporary containers. */
export async function cleanupDrill(docker: Docker, tag: string): Promise<void> {
  const containers = await docker.listContainers({ all: true, filters: { label: [HELPER_LABEL] } });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {})));
  const { Volumes } = await docker.listVolumes({ filters: { label: [`dr.drill=${tag}`] } });
  await Promise.all((Volumes ?? []).map((v) => docker.getVolume(v.Name).remove({ force: true }).catch(() => {})));
}

export async function runVerify(ctx: Context, opts: { id?: string; latest?: boolean; level: Level; from?: string; subset?: string; trustSigner?: string }): Promise<VerifyReport> {
  const t0 = Date.now();
  const { config, log } = ctx;
  if (!['quick', 'read', 'full'].includes(opts.level)) throw new DrError(`--level ${opts.level}: use quick, read or full`, ExitCode.usage);
  const subset = parseSubset(opts.subset);
  const { identities, trust } = identitiesFrom(config, 'dr verify', opts.trustSigner);
  if (opts.id && opts.latest) throw new DrError('give either a backup id or --latest', ExitCode.usage);
  const { id, storage } = await locateBackup(selectDestinations(config, opts.from, log), opts.latest || !opts.id ? undefined : opts.id);
  // no trusted signer: refused before the lock, naming the key the manifest carries (for --trust-signer)
  if (!trust.configured && !trust.override) requireTrust(trust, 'dr verify', id, (await readManifest(storage, id).catch(() => null))?.signature?.publicKey ?? null);
  await mkdir(config.localDir, { recursive: true, mode: 0o700 });
  const lock = await acquireLock(config.localDir, `dr verify ${id}`, config.lockStaleSec, log);
  const checks: Check[] = [];
  const add = (level: Level, subject: string, check: string, fn: () => Promise<string | void>) => fn().then(
    (detail) => { checks.push({ level, subject, check, ok: true, detail: detail || 'ok' }); return true; },
    (err: unknown) => {
      if (err instanceof UntrustedSignerError) throw err; // not a finding about the backup: a refusal
      checks.push({ level, subject, check, ok: false, detail: errorMessage(err) });
      return false;
    },
  );
  let signer: TrustedSigner | null = null;
  let m: Manifest | null = null;
  let rto: number | null = null;
  const tag = `${id.slice(0, 15).toLowerCase()}-${randomBytes(3).toString('hex')}`;
  let docker: Docker | null = null;
  const onSignal = () => {
    log.warn('drill interrupted: removing what it created');
    void (async () => { if (docker) await cleanupDrill(docker, tag); await lock.release(); process.exit(ExitCode.failed); })();
  };
  try {
    // quick
    await add('quick', 'manifest.json', 'signature', async () => {
      m = await readManifest(storage, id);
      if (m.format !== FORMAT) throw new Error(`format ${m.format}; this dr reads ${FORMAT}`);
      const { problem, signer: s } = checkTrustedSignature(m, trust, 'dr verify', id, log);
      if (problem) throw new Error(problem);
      signer = s;
      return `signed by ${s!.key}, trusted ${s!.override ? 'ONLY because of --trust-signer (not by configuration)' : `by ${s!.trustedBy}`}; ${m.parts.length} parts`;
    });
    const man = m as Manifest | null;
    if (man) {
      for (const p of man.parts) await add('quick', p.key, 'present, size, stored SHA-256', () => checkStoredPart(storage, man, p, true));
      const quickOk = checks.every((c) => c.ok);
      // read
      if (opts.level !== 'quick' && quickOk) {
        const chosen = subsetOf(man.parts, subset);
        for (const p of chosen) {
          if (p.kind === 'volume') {
            const v = man.volumes.find((x) => x.part === p.key)!;
            const idx = man.parts.find((x) => x.key === v.index);
            await add('read', p.key, 'decrypt, decompress, SHA-256, tar entries vs index', async () => {
              if (!idx) throw new Error(`no index part for ${v.name}`);
              const index = await loadIndex(storage, man, idx, identities);
              const checker = tarChecker(v.name, index);
              await readPart(storage, man, p, identities, checker.sink);
              if (checker.diffs.length) throw new Error(`differs from its index: ${checker.diffs.join('; ')}`);
              return `${checker.entries()} entries match the index`;
            });
          } else {
            await add('read', p.key, 'decrypt, decompress, SHA-256', () => readPart(storage, man, p, identities).then(() => `${p.plain.size} bytes`));
          }
        }
      }
      // full
      if (opts.level === 'full' && checks.every((c) => c.ok)) {
        docker = await ctx.docker();
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        const suffix = `_drill_${tag.replace(/-/g, '_')}`;
        try {
          const r0 = Date.now();
          const s = await runRestore(ctx, { id, suffix, from: storage.kind, volumeLabels: { 'dr.drill': tag }, lockHeld: true, trustSigner: opts.trustSigner });
          rto = (Date.now() - r0) / 1000;
          for (const v of s.volumes) checks.push({ level: 'full', subject: v.name, check: `restored into ${v.target}, every file re-read vs index`, ok: true, detail: `${v.entries} entries identical` });
          for (const d of s.databases) {
            checks.push({ level: 'full', subject: d.container, check: 'replayed into a throwaway container, tables vs manifest', ok: true,
              detail: [d.databases.map((x) => `${x.name}: ${x.tables} tables, ${x.rows} rows identical`).join('; ') || 'keyspace identical', ...(d.notes ?? [])].join('; ') });
          }
        } catch (err) {
          checks.push({ level: 'full', subject: 'restore', check: 'side-by-side restore', ok: false, detail: errorMessage(err) });
        } finally {
          await cleanupDrill(docker, tag);
          const left = (await docker.listVolumes({ filters: { label: [`dr.drill=${tag}`] } })).Volumes ?? [];
          checks.push({ level: 'full', subject: 'cleanup', check: 'scratch volumes and containers removed', ok: left.length === 0, detail: left.length ? `left: ${left.map((v) => v.Name).join(', ')}` : 'nothing left' });
        }
      }
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await lock.release();
  }
  const mm = m as Manifest | null;
  const finished = mm?.finishedAt ?? new Date(0).toISOString();
  return {
    id, from: `${storage.kind} ${storage.location}`, level: opts.level, subset: opts.subset ?? null, startedAt: new Date(t0).toISOString(),
    backupFinishedAt: finished, rpoSeconds: Math.round((Date.now() - Date.parse(finished)) / 1000), rtoSeconds: rto,
    durationSeconds: (Date.now() - t0) / 1000, passed: checks.length > 0 && checks.every((c) => c.ok), signer: signer as TrustedSigner | null, checks,
    differences: checks.filter((c) => !c.ok).map((c) => `${c.subject}: ${c.detail}`),
  };
}

/** Who signed the backup and why that key is trusted (a --trust-signer override is spelt out). */
export function signerLine(s: TrustedSigner | null): string {
  if (!s) return 'not established (the signature check failed)';
  return s.override ? `${s.key} — WARNING: trusted only because of --trust-signer, not by this host's configuration` : `${s.key} (trusted by ${s.trustedBy})`;
}

export function markdownReport(r: VerifyReport): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    `# Restore drill: backup ${r.id}`,
    '',
    `- **Result: ${r.passed ? 'PASS' : 'FAIL'}** (level ${r.level}${r.subset ? `, subset ${r.subset}` : ''}, from ${r.from})`,
    `- RPO (age of the backup at the drill): ${(r.rpoSeconds / 3600).toFixed(1)} h`,
    `- RTO (measured restore time): ${r.rtoSeconds === null ? 'not measured (level full measures it)' : `${r.rtoSeconds.toFixed(1)} s`}`,
    `- Drill started ${r.startedAt}, took ${r.durationSeconds.toFixed(1)} s`,
    `- Signer: ${signerLine(r.signer)}`,
    '',
    '| level | subject | check | result | detail |',
    '|---|---|---|---|---|',
    ...r.checks.map((c) => `| ${c.level} | ${esc(c.subject)} | ${esc(c.check)} | ${c.ok ? 'ok' : '**FAIL**'} | ${esc(c.detail)} |`),
    '',
    r.differences.length ? `## Differences\n\n${r.differences.map((d) => `- ${esc(d)}`).join('\n')}\n` : 'No differences.\n',
  ].join('\n');
}
