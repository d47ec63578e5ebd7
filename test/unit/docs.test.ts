import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCHEMA } from '../../src/core/config.ts';
import { ROOT } from '../helpers.ts';

test('every configuration variable is documented in README.md\'s table', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  for (const v of SCHEMA) assert.ok(readme.includes(`| \`${v.name}\` |`) || readme.includes(`\`${v.name}\`, `) || readme.includes(`\`${v.name}\` (`), `${v.name} missing from README.md`);
});

test('.env.example holds placeholders only and documents each variable with a comment', () => {
  const lines = readFileSync(join(ROOT, '.env.example'), 'utf8').split('\n');
  for (const [i, line] of lines.entries()) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    if (/PASSWORD|SECRET|TOKEN/.test(m[1]!)) assert.match(m[2]!, /^<.+>$/, `${m[1]} must be a <placeholder>`);
    let j = i - 1;
    while (j >= 0 && /^[A-Z0-9_]+=/.test(lines[j]!)) j--;
    assert.ok(j >= 0 && lines[j]!.startsWith('#'), `${m[1]} has no comment above it`);
  }
});
