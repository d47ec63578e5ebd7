/**
 * Side-by-side copies are not the stack (issue 17, item 8): volumes a --suffix restore made, a drill's
 * scratch volumes and --force's safety copies are left out of backups unless asked for, and dr status lists
 * them as leftovers with the command that removes them.
 */
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { runDr, stackUp, docker, backupEnv, TEST_PROJECT_LABEL, type BackupEnv } from '../helpers.ts';
import type { Manifest } from '../../src/repo/manifest.ts';
import type { StatusReport } from '../../src/cli/commands/status.ts';
import type { BackupPlan } from '../../src/backup/plan.ts';
import type { Leftover } from '../../src/stack/discover.ts';

let env: BackupEnv;
let manifest: Manifest;

before(async () => {
  stackUp();
  env = await backupEnv('leftovers');
  const r = await runDr(['backup', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  manifest = JSON.parse(r.stdout);
});

const exists = (v: string) => docker('volume', 'ls', '-q', '--filter', `name=^${v}$`) === v;
const planned = (p: BackupPlan) => [...p.hotVolumes, ...p.quiescedVolumes, ...p.dumpedVolumes.map((d) => d.volume)];

test('a --suffix restore\'s volume and a drill\'s scratch volume: left out of dr backup, listed by dr status with the command that removes them', async () => {
  const copy = 'v2_glpi_config_lo';
  // what an interrupted drill leaves behind (labels as src/verify/run.ts sets them; the compose label keeps stack.sh's guard calm)
  const drill = 'v2_glpi_files_drill_lotest';
  const made: string[] = [];
  try {
    const r = await runDr(['restore', '--latest', '--volume', 'v2_glpi_config', '--suffix', '_lo'], env);
    if (exists(copy)) made.push(copy);
    assert.equal(r.code, 0, r.stderr);
    docker('volume', 'create', '--label', TEST_PROJECT_LABEL, '--label', `dr.restored-from=${manifest.id}:v2_glpi_files`, '--label', 'dr.drill=lotest', drill);
    made.push(drill);

    // dr backup --dry-run: not in the plan, shown as left out
    const dry = await runDr(['backup', '--dry-run', '--json'], env);
    assert.equal(dry.code, 0, dry.stderr);
    const d = JSON.parse(dry.stdout) as { plan: BackupPlan; leftOut: Leftover[] };
    assert.ok(planned(d.plan).includes('v2_glpi_config'), 'the stack\'s own volume is backed up');
    assert.ok(!planned(d.plan).includes(copy) && !planned(d.plan).includes(drill), `copies not planned: ${planned(d.plan).join(', ')}`);
    assert.deepEqual(d.leftOut.map((l) => l.name).sort(), [copy, drill].sort());
    const text = await runDr(['backup', '--dry-run'], env);
    assert.match(text.stdout, new RegExp(`left out: .*${copy} \\(restored copy of v2_glpi_config\\)`));
    assert.match(text.stdout, new RegExp(`${drill} \\(drill scratch copy of v2_glpi_files\\)`));

    // dr backup: the manifest holds the stack only
    const b = await runDr(['backup', '--json'], env);
    assert.equal(b.code, 0, b.stderr);
    const m = JSON.parse(b.stdout) as Manifest;
    assert.ok(m.volumes.some((v) => v.name === 'v2_glpi_config'));
    assert.deepEqual(m.volumes.filter((v) => v.name === copy || v.name === drill), []);
    assert.ok(!m.parts.some((p) => p.key.includes('_lo.') || p.key.includes('lotest')));

    // dr status --json: listed as leftovers (what it is a copy of, its backup, its age, the command), not a problem
    const st = await runDr(['status', '--json'], env);
    assert.equal(st.code, 0, st.stderr);
    const s = JSON.parse(st.stdout) as StatusReport;
    assert.deepEqual(s.problems, []);
    const lo = s.leftovers.find((l) => l.name === copy)!;
    assert.ok(lo, JSON.stringify(s.leftovers));
    assert.equal(lo.kind, 'restored');
    assert.equal(lo.of, 'v2_glpi_config');
    assert.equal(lo.backupId, manifest.id);
    assert.equal(lo.backedUp, false);
    assert.ok(lo.ageSeconds !== null && lo.ageSeconds >= 0 && lo.ageSeconds < 3600, `age ${lo.ageSeconds}`);
    assert.equal(lo.remove, `docker volume rm ${copy}`);
    assert.equal(s.leftovers.find((l) => l.name === drill)?.kind, 'drill');
    assert.equal(s.volumes.find((v) => v.name === copy)?.excluded, true);
    const text2 = await runDr(['status'], env);
    assert.match(text2.stdout, new RegExp(`Leftovers of restores and drills \\(2\\)`));
    assert.match(text2.stdout, new RegExp(`${copy}\\s+v2_glpi_config\\s+restored copy\\s+${manifest.id}`));
    assert.match(text2.stdout, new RegExp(`docker volume rm (${copy} ${drill}|${drill} ${copy})`));

    // asked for: DR_INCLUDE_RESTORED=true backs up the --suffix copy (never the drill's), still listed
    const inc = await runDr(['backup', '--dry-run', '--json'], { ...env, DR_INCLUDE_RESTORED: 'true' });
    assert.equal(inc.code, 0, inc.stderr);
    const di = JSON.parse(inc.stdout) as { plan: BackupPlan; leftOut: Leftover[] };
    assert.ok(planned(di.plan).includes(copy));
    assert.ok(!planned(di.plan).includes(drill));
    assert.deepEqual(di.leftOut.map((l) => l.name), [drill]);

    // the command status printed removes them
    execFileSync('bash', ['-c', lo.remove]);
    execFileSync('bash', ['-c', s.leftovers.find((l) => l.name === drill)!.remove]);
    assert.ok(!exists(copy) && !exists(drill));
    const after = JSON.parse((await runDr(['status', '--json'], env)).stdout) as StatusReport;
    assert.deepEqual(after.leftovers, []);
    assert.match((await runDr(['status'], env)).stdout, /Leftovers of restores and drills: none/);
  } finally {
    for (const v of made) if (exists(v)) docker('volume', 'rm', v);
  }
});

test('a --force safety copy (dr.pre-restore-of) is listed as a leftover and never backed up', async () => {
  const keep = 'v2_glpi_files_pre-restore_lotest';
  docker('volume', 'create', '--label', TEST_PROJECT_LABEL, '--label', 'dr.exclude=true', '--label', 'dr.pre-restore-of=v2_glpi_files', keep);
  try {
    const s = JSON.parse((await runDr(['status', '--json'], env)).stdout) as StatusReport;
    assert.deepEqual(s.leftovers.map((l) => [l.name, l.kind, l.of, l.backedUp, l.remove]), [[keep, 'pre-restore', 'v2_glpi_files', false, `docker volume rm ${keep}`]]);
    const d = JSON.parse((await runDr(['backup', '--dry-run', '--json'], { ...env, DR_INCLUDE_RESTORED: 'true' })).stdout) as { plan: BackupPlan; leftOut: Leftover[] };
    assert.ok(!planned(d.plan).includes(keep));
    assert.deepEqual(d.leftOut.map((l) => l.name), [keep]);
  } finally {
    docker('volume', 'rm', keep);
  }
});
