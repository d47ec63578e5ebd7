import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, cpSync, mkdirSync, rmSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { zstdCompressSync, zstdDecompressSync } from 'node:zlib';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import tar from 'tar-stream';
import { runDr, stackUp, docker, backupEnv, startedAt, scratchDir, WRITERS, DATABASES, type BackupEnv } from '../helpers.ts';
import { signManifest, serializeManifest, type Manifest } from '../../src/repo/manifest.ts';
import { loadSigningKey } from '../../src/repo/trust.ts';
import { createEncryptStream, createDecryptStream, parseIdentities } from '../../src/codec/age/index.ts';
import type { VerifyReport } from '../../src/verify/run.ts';

let env: BackupEnv;
let manifest: Manifest;

before(async () => {
  stackUp();
  env = await backupEnv('verify');
  const r = await runDr(['backup', '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  manifest = JSON.parse(r.stdout);
});

const verify = async (e: BackupEnv, ...args: string[]) => {
  const r = await runDr(['verify', '--latest', '--json', ...args], e);
  return { code: r.code, stderr: r.stderr, report: r.stdout ? JSON.parse(r.stdout) as VerifyReport : null };
};

test('a good backup passes quick, read and full; full leaves nothing behind and never touches the live stack', async () => {
  const starts = [...WRITERS, ...DATABASES].map(startedAt);
  const dangling = () => docker('volume', 'ls', '-q', '--filter', 'dangling=true').split('\n').filter(Boolean).sort();
  const danglingBefore = dangling();
  for (const level of ['quick', 'read', 'full']) {
    const reportFile = join(scratchDir(), `drill-${level}.md`);
    const r = await verify(env, '--level', level, '--report', reportFile);
    assert.equal(r.code, 0, `${level}: ${r.stderr} ${JSON.stringify(r.report?.differences)}`);
    assert.equal(r.report!.passed, true);
    assert.equal(r.report!.id, manifest.id);
    assert.ok(r.report!.checks.some((c) => c.level === level));
    const md = readFileSync(reportFile, 'utf8');
    assert.match(md, /\*\*Result: PASS\*\*/);
    if (level === 'full') {
      assert.ok(r.report!.rtoSeconds! > 0);
      assert.match(md, /RTO \(measured restore time\): [\d.]+ s/);
      assert.ok(r.report!.checks.some((c) => c.subject === 'v2_glpi_db' && /glpi: 6 tables, \d+ rows identical/.test(c.detail)));
      assert.ok(r.report!.checks.some((c) => c.subject === 'v2_glpi_files' && /entries identical/.test(c.detail)));
    }
  }
  assert.equal(docker('volume', 'ls', '-q', '--filter', 'label=dr.drill'), '', 'no scratch volume left');
  assert.equal(docker('ps', '-aq', '--filter', 'label=dr.helper'), '', 'no temporary container left');
  assert.deepEqual([...WRITERS, ...DATABASES].map(startedAt), starts, 'the live stack was never stopped');
  assert.deepEqual(dangling(), danglingBefore, 'no anonymous volume left by temporary containers');
});

test('--subset 1/3, 2/3 and 3/3 together read every part exactly once', async () => {
  const seen: string[] = [];
  for (const n of [1, 2, 3]) {
    const r = await verify(env, '--level', 'read', '--subset', `${n}/3`);
    assert.equal(r.code, 0, r.stderr);
    seen.push(...r.report!.checks.filter((c) => c.level === 'read').map((c) => c.subject));
  }
  assert.deepEqual([...seen].sort(), manifest.parts.map((p) => p.key).sort());
  const bad = await runDr(['verify', '--latest', '--subset', '4/3'], env);
  assert.equal(bad.code, 2);
});

/** A copy of the backup; `mutate` may rewrite parts (re-encrypted, hashes updated, manifest re-signed). */
async function damaged(name: string, mutate: (dir: string, m: Manifest) => Promise<void> | void): Promise<BackupEnv> {
  const local = join(scratchDir(), `verify-${name}`);
  mkdirSync(local, { recursive: true });
  const dir = join(local, manifest.id);
  cpSync(join(env.DR_LOCAL_DIR, manifest.id), dir, { recursive: true });
  const m: Manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  await mutate(dir, m);
  return { ...env, DR_LOCAL_DIR: local };
}
async function rewritePart(dir: string, m: Manifest, key: string, change: (plain: Buffer) => Buffer | Promise<Buffer>): Promise<void> {
  const ids = parseIdentities(readFileSync(env.identity, 'utf8'), 'test');
  const plain = zstdDecompressSync(await buffer(Readable.from([readFileSync(join(dir, key))]).pipe(createDecryptStream(ids))));
  const changed = await change(plain);
  const stored = await buffer(Readable.from([zstdCompressSync(changed)]).pipe(createEncryptStream(m.encryption.recipients)));
  writeFileSync(join(dir, key), stored);
  const p = m.parts.find((x) => x.key === key)!;
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  p.plain = { size: changed.length, sha256: sha(changed) };
  p.stored = { size: stored.length, sha256: sha(stored) };
  writeFileSync(join(dir, 'manifest.json'), serializeManifest(signManifest(m, loadSigningKey(env.DR_SIGNING_KEY_FILE))));
}
function flip(file: string, at: number): void { const b = readFileSync(file); b[at] = b[at]! ^ 1; writeFileSync(file, b); }

test('each damage is caught at the lowest level that can see it, with a precise message', async () => {
  const vol = 'volumes/v2_glpi_config.tar.zst.age';
  const dump = 'dumps/v2_glpi_db/glpi.sql.zst.age';
  const cases: { name: string; level: string; mutate: (d: string, m: Manifest) => Promise<void> | void; caughtAt: string; subject: string; message: RegExp }[] = [
    { name: 'missing', level: 'quick', mutate: (d) => rmSync(join(d, 'dumps/v2_chatwoot_db/_globals.sql.zst.age')), caughtAt: 'quick', subject: 'dumps/v2_chatwoot_db/_globals.sql.zst.age', message: /is missing/ },
    { name: 'flip-volume', level: 'quick', mutate: (d) => flip(join(d, 'volumes/v2_glpi_files.tar.zst.age'), 500), caughtAt: 'quick', subject: 'volumes/v2_glpi_files.tar.zst.age', message: /corrupted: SHA-256/ },
    { name: 'flip-dump', level: 'quick', mutate: (d) => flip(join(d, dump), 200), caughtAt: 'quick', subject: dump, message: /corrupted: SHA-256/ },
    { name: 'manifest', level: 'quick', mutate: (d) => {
      const t = readFileSync(join(d, 'manifest.json'), 'utf8').replace('"mode": "hot"', '"mode": "cold"');
      writeFileSync(join(d, 'manifest.json'), t);
    }, caughtAt: 'quick', subject: 'manifest.json', message: /signature does not match its content/ },
    { name: 'changed-file', level: 'read', mutate: (d, m) => rewritePart(d, m, vol, async (plain) => {
      // a valid tar, re-encrypted: config_db.php now has other content
      const ex = tar.extract();
      const pack = tar.pack();
      ex.on('entry', (h, s, next) => {
        const chunks: Buffer[] = [];
        s.on('data', (c: unknown) => { chunks.push(c as Buffer); });
        s.on('end', () => {
          let body = Buffer.concat(chunks);
          if (h.name === './config_db.php') { body = Buffer.from(body.toString().replace('glpi_db', 'evil_db')); h.size = body.length; }
          pack.entry(h, body, next);
        });
      });
      ex.on('finish', () => pack.finalize());
      Readable.from([plain]).pipe(ex as unknown as NodeJS.WritableStream);
      return buffer(pack as unknown as Readable);
    }), caughtAt: 'read', subject: vol, message: /v2_glpi_config:config_db\.php: (content \(SHA-256\) differs|size)/ },
    { name: 'not-loadable', level: 'full', mutate: (d, m) => rewritePart(d, m, dump, (p) => Buffer.concat([p, Buffer.from('\nTHIS IS NOT SQL;\n')])), caughtAt: 'full', subject: 'restore', message: /v2_glpi_db: replaying dumps\/v2_glpi_db\/glpi\.sql\.zst\.age failed/ },
    { name: 'row-count', level: 'full', mutate: (d, m) => rewritePart(d, m, dump, (p) => {
      const t = p.toString('utf8');
      const changed = t.replace(/INSERT INTO `glpi_entities` VALUES\s*\(/, "INSERT INTO `glpi_entities` VALUES (99,'extra',NULL),(");
      assert.notEqual(changed, t, 'the dump was changed');
      return Buffer.from(changed);
    }),
      caughtAt: 'full', subject: 'restore', message: /v2_glpi_db\/glpi\.glpi_entities: 4 rows, the backup has 3/ },
  ];
  for (const c of cases) {
    const e = await damaged(c.name, c.mutate);
    const r = await verify(e, '--level', c.level);
    assert.equal(r.code, 4, `${c.name}: ${r.stderr}`);
    const failed = r.report!.checks.filter((x) => !x.ok);
    assert.ok(failed.length >= 1, c.name);
    assert.equal(failed[0]!.level, c.caughtAt, `${c.name} caught at ${failed[0]!.level}: ${failed[0]!.detail}`);
    assert.equal(failed[0]!.subject, c.subject, c.name);
    assert.match(failed[0]!.detail, c.message, c.name);
    assert.ok(r.report!.differences.length >= 1);
    if (c.caughtAt !== 'quick') {
      // the levels below it pass: the damage is invisible to them
      const lower = await verify(e, '--level', c.caughtAt === 'read' ? 'quick' : 'read');
      assert.equal(lower.code, 0, `${c.name} is invisible below ${c.caughtAt}: ${JSON.stringify(lower.report?.differences)}`);
    }
  }
  assert.equal(docker('volume', 'ls', '-q', '--filter', 'label=dr.drill'), '', 'failed drills leave nothing either');
  assert.equal(docker('ps', '-aq', '--filter', 'label=dr.helper'), '');
  assert.ok(!existsSync(join(scratchDir(), 'nonexistent')));
});

test('a cold backup stops the databases too, archives their raw volumes, restarts everything, and passes the full drill', async () => {
  const e = await backupEnv('cold');
  const dbStarts = DATABASES.map(startedAt);
  const b = await runDr(['backup', '--mode', 'cold', '--json'], e);
  assert.equal(b.code, 0, b.stderr);
  const m: Manifest = JSON.parse(b.stdout);
  assert.equal(m.mode, 'cold');
  for (const v of ['v2_glpi_db_data', 'v2_chatwoot_db_data', 'v2_chatwoot_redis_data']) {
    assert.ok(m.volumes.find((x) => x.name === v)?.part, `${v} archived raw`);
  }
  assert.deepEqual(m.downtime.containers.map((c) => c.name).slice(-3).sort(), [...DATABASES].sort(), 'databases stopped after the writers');
  DATABASES.forEach((c, i) => assert.notEqual(startedAt(c), dbStarts[i], `${c} was restarted`));
  for (const c of [...WRITERS, ...DATABASES]) assert.equal(docker('inspect', '-f', '{{.State.Running}}', c), 'true');
  const r = await verify(e, '--level', 'full');
  assert.equal(r.code, 0, `${r.stderr} ${JSON.stringify(r.report?.differences)}`);
});
