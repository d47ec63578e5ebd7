/** docs/ARCHITECTURE.md against the tree: its layer table names every folder of src/, and the imports obey it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../helpers.ts';

const SRC = join(ROOT, 'src');

function sourceFiles(dir = SRC, out: string[] = []): string[] {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) sourceFiles(p, out); else if (n.endsWith('.ts')) out.push(relative(ROOT, p));
  }
  return out;
}

/** `| 3 | \`repo/\` | … |` rows of the "Layers" section: folder → level (1 is the top). */
function layers(): Map<string, number> {
  const doc = readFileSync(join(ROOT, 'docs/ARCHITECTURE.md'), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('Layers'));
  assert.ok(section, 'docs/ARCHITECTURE.md has no "## Layers" section');
  const m = new Map<string, number>();
  for (const row of section.matchAll(/^\|\s*(\d+)\s*\|\s*((?:`[a-z]+\/`[ ,]*)+)\|/gm)) {
    for (const f of row[2]!.matchAll(/`([a-z]+)\/`/g)) m.set(f[1]!, Number(row[1]));
  }
  return m;
}

/** Relative imports of src/ files (static, dynamic, type-only, worker URLs), as repository paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*|new URL\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)) {
    out.push(relative(ROOT, resolve(dirname(join(ROOT, file)), m[1]!)));
  }
  return out;
}

const folderOf = (file: string) => file.split('/')[1]!;

test('every folder of src/ is in the layer table of docs/ARCHITECTURE.md, and every folder it names exists', () => {
  const table = layers();
  const folders = readdirSync(SRC).filter((n) => statSync(join(SRC, n)).isDirectory());
  assert.deepEqual([...folders].sort(), [...table.keys()].sort());
  assert.deepEqual(readdirSync(SRC).filter((n) => !statSync(join(SRC, n)).isDirectory()), [], 'src/ holds folders only (the entry point is bin/dr)');
});

test('no folder imports a folder of its own level or above it (docs/ARCHITECTURE.md, "Layers")', () => {
  const table = layers();
  const wrong: string[] = [];
  for (const f of sourceFiles()) {
    for (const t of importsOf(f)) {
      if (!t.startsWith('src/')) continue;
      const a = folderOf(f), b = folderOf(t);
      if (a !== b && !(table.get(b)! > table.get(a)!)) wrong.push(`${f} → ${t} (${a}: ${table.get(a)}, ${b}: ${table.get(b)})`);
    }
  }
  assert.deepEqual(wrong, []);
});

test('no import cycle between the files of src/', () => {
  const graph = new Map(sourceFiles().map((f) => [f, importsOf(f).filter((t) => t.startsWith('src/'))]));
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[] = [];
  const visit = (f: string, path: string[]) => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') { cycles.push([...path.slice(path.indexOf(f)), f].join(' → ')); return; }
    state.set(f, 'open');
    for (const t of graph.get(f) ?? []) visit(t, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of graph.keys()) visit(f, []);
  assert.deepEqual(cycles, []);
});

test('the product carries no test-only code: nothing in src/ imports test/ or reads a DR_TEST_ variable but the one seam', () => {
  const wrong: string[] = [];
  for (const f of sourceFiles()) {
    if (importsOf(f).some((t) => t.startsWith('test/'))) wrong.push(`${f} imports test/`);
    const text = readFileSync(join(ROOT, f), 'utf8');
    for (const m of text.matchAll(/DR_TEST_[A-Z_]+/g)) if (f !== 'src/core/hooks.ts') wrong.push(`${f} reads ${m[0]}`);
  }
  assert.deepEqual(wrong, []);
});

test('every module of src/ opens with a header that says what it is for', () => {
  const bare = sourceFiles().filter((f) => !/^\s*(\/\*\*|\/\/)/.test(readFileSync(join(ROOT, f), 'utf8')));
  assert.deepEqual(bare, []);
});

test('every file of src/ that README.md, RESTORE.md, docs/ or a module header names exists', () => {
  const texts = ['README.md', 'RESTORE.md', ...readdirSync(join(ROOT, 'docs')).map((n) => `docs/${n}`), ...sourceFiles()];
  const missing: string[] = [];
  for (const f of texts) {
    for (const m of readFileSync(join(ROOT, f), 'utf8').matchAll(/\bsrc\/[A-Za-z0-9_/.-]+\.ts\b/g)) {
      try { statSync(join(ROOT, m[0])); } catch { missing.push(`${f}: ${m[0]}`); }
    }
  }
  assert.deepEqual(missing, []);
});
