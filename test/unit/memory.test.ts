import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flowed, gcSettings, restoreGcMode, tuneGcForStreaming } from '../../src/core/memory.ts';

test('restore GC settings apply during a restore and end with it (a daemon runs drills, then backups)', () => {
  tuneGcForStreaming();
  const backup = gcSettings();
  assert.deepEqual(backup, { active: true, minorGcEveryBytes: 16 << 20, fullGcs: false });
  const end = restoreGcMode();
  assert.deepEqual(gcSettings(), { active: true, minorGcEveryBytes: 4 << 20, fullGcs: true });
  for (let i = 0; i < 300; i++) flowed(1 << 20); // minor and full GCs run without error
  end();
  assert.deepEqual(gcSettings(), backup);
});
