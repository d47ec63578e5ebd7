import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { setTimeout as sleep } from 'node:timers/promises';
import { gatedToolSource } from '../../src/core/tools.ts';
import { tempDir } from '../helpers.ts';

/** pids of the shells that wait on a gate whose command line contains `marker` */
function waiting(marker: string): string[] {
  return execFileSync('ps', ['-eo', 'pid=,args='], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('read -r go') && l.includes(marker)).map((l) => l.trim().split(/\s+/)[0]!);
}

test('a gated tool runs only after go(): the file it reads may change until then', async () => {
  const dir = tempDir('dr-gate-');
  const f = join(dir, 'f');
  writeFileSync(f, 'before\n');
  const g = gatedToolSource('cat', [f], 'cat of f');
  await sleep(100); // a tool that ran at once would have read "before" by now
  assert.equal(waiting(f).length, 1, 'the shell waits at its gate');
  writeFileSync(f, 'after\n');
  assert.equal(await text(g.go()), 'after\n');
});

test('a gated tool keeps its exit-code checks; destroying it before go() ends the waiting shell', async () => {
  const dir = tempDir('dr-gate-');
  mkdirSync(join(dir, 'd'));
  const bad = gatedToolSource('tar', ['-C', join(dir, 'missing'), '-cf', '-', '.'], 'tar of volume v2_gone');
  await assert.rejects(text(bad.go()), /tar of volume v2_gone failed \(exit 2\)/);
  const idle = gatedToolSource('tar', ['-C', join(dir, 'd'), '-cf', '-', '.'], 'tar of volume v2_idle');
  await sleep(50);
  assert.equal(waiting(join(dir, 'd')).length, 1);
  idle.stream.destroy();
  for (let i = 0; i < 50 && waiting(join(dir, 'd')).length; i++) await sleep(20);
  assert.deepEqual(waiting(join(dir, 'd')), [], 'no shell is left waiting');
});
