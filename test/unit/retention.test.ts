import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyPolicy,
  describePolicy,
  isEmptyPolicy,
  parseDuration,
  parsePolicy,
  type BackupRef,
  type Decision,
  type RetentionPolicy,
} from '../../src/repo/retention.ts';

// Every expectation below was worked out by hand from the calendar (weekdays and ISO weeks checked with
// `date -u -d DAY +'%a %G-W%V'`), never by running the code under test.

/** "2023-04-05T10:15:00Z" → "20230405T101500Z-aaaaaa" (the backup id format: time plus a random suffix). */
function idOf(iso: string, suffix = 'aaaaaa'): string {
  assert.match(iso, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z-${suffix}`;
}
function ref(iso: string, suffix = 'aaaaaa'): BackupRef {
  return { id: idOf(iso, suffix), time: new Date(iso) };
}
const refs = (isos: string[]) => isos.map((iso) => ref(iso));
/** The kept ids, in the order returned (newest first). */
const keptIds = (ds: Decision[]) => ds.filter((d) => d.keep).map((d) => d.id);
const reasonsOf = (ds: Decision[], id: string) => {
  const d = ds.find((x) => x.id === id);
  assert.ok(d, `no decision for ${id}`);
  return d.reasons;
};
/** A deterministic shuffle, so that no test passes only because its input happens to be sorted. */
function shuffled<T>(xs: T[]): T[] {
  const out = [...xs];
  let seed = 12345;
  for (let i = out.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Checks the invariants of every result, then returns it. */
function apply(backups: BackupRef[], policy: RetentionPolicy, timeZone?: string): Decision[] {
  const ds = timeZone === undefined ? applyPolicy(shuffled(backups), policy) : applyPolicy(shuffled(backups), policy, timeZone);
  assert.equal(ds.length, backups.length);
  for (let i = 1; i < ds.length; i++) {
    const a = ds[i - 1]!, b = ds[i]!;
    assert.ok(a.time > b.time || (a.time === b.time && a.id > b.id), `decisions not newest first at ${i}: ${a.id}, ${b.id}`);
  }
  for (const d of ds) {
    assert.equal(d.keep, d.reasons.length > 0, `${d.id}: keep must be exactly "has reasons"`);
    assert.equal(d.time, backups.find((b) => b.id === d.id)!.time.toISOString());
  }
  if (ds.length) assert.equal(ds[0]!.keep, true, 'the newest backup is never removed');
  return ds;
}

// ---------------------------------------------------------------------------------------------------------------
// Three years of daily backups with gaps

test('three years of daily backups with gaps: daily 7, weekly 4, monthly 12, yearly 3', () => {
  const missing = (day: string) =>
    (day >= '2023-02-01' && day <= '2023-02-28') || // a missing month
    (day >= '2023-05-22' && day <= '2023-06-04') || // two missing ISO weeks, 2023-W21 and W22
    day === '2023-06-10' || day === '2023-06-11' || // a missing weekend (Sat, Sun of 2023-W23)
    (day >= '2022-12-25' && day <= '2022-12-31') || // holidays
    day === '2021-12-31';
  const isos: string[] = [];
  for (let t = Date.parse('2020-06-15T02:00:00Z'); t <= Date.parse('2023-06-14T02:00:00Z'); t += 86_400_000) {
    const iso = new Date(t).toISOString().replace('.000Z', 'Z');
    if (!missing(iso.slice(0, 10))) isos.push(iso);
  }
  isos.push('2023-06-13T14:00:00Z', '2021-12-30T23:59:59Z'); // second backups of a day: the later one counts
  assert.equal(isos.length, 1095 - 28 - 14 - 2 - 7 - 1 + 2);

  const ds = apply(refs(isos), { daily: 7, weekly: 4, monthly: 12, yearly: 3 });
  const expected: [string, string[]][] = [
    ['2023-06-14T02:00:00Z', ['daily 2023-06-14', 'weekly 2023-W24', 'monthly 2023-06', 'yearly 2023']],
    ['2023-06-13T14:00:00Z', ['daily 2023-06-13']],
    ['2023-06-12T02:00:00Z', ['daily 2023-06-12']],
    ['2023-06-09T02:00:00Z', ['daily 2023-06-09', 'weekly 2023-W23']], // Fri: 10 and 11 are missing
    ['2023-06-08T02:00:00Z', ['daily 2023-06-08']],
    ['2023-06-07T02:00:00Z', ['daily 2023-06-07']],
    ['2023-06-06T02:00:00Z', ['daily 2023-06-06']], // the 7th day that has a backup
    ['2023-05-21T02:00:00Z', ['weekly 2023-W20', 'monthly 2023-05']], // Sun; W21, W22 empty, not counted
    ['2023-05-14T02:00:00Z', ['weekly 2023-W19']],
    ['2023-04-30T02:00:00Z', ['monthly 2023-04']],
    ['2023-03-31T02:00:00Z', ['monthly 2023-03']],
    // 2023-02 has no backup and is not counted
    ['2023-01-31T02:00:00Z', ['monthly 2023-01']],
    ['2022-12-24T02:00:00Z', ['monthly 2022-12', 'yearly 2022']],
    ['2022-11-30T02:00:00Z', ['monthly 2022-11']],
    ['2022-10-31T02:00:00Z', ['monthly 2022-10']],
    ['2022-09-30T02:00:00Z', ['monthly 2022-09']],
    ['2022-08-31T02:00:00Z', ['monthly 2022-08']],
    ['2022-07-31T02:00:00Z', ['monthly 2022-07']],
    ['2022-06-30T02:00:00Z', ['monthly 2022-06']], // the 12th month
    ['2021-12-30T23:59:59Z', ['yearly 2021']], // all counts used up: the oldest (2020-06-15) goes
  ];
  assert.deepEqual(
    ds.filter((d) => d.keep).map((d) => [d.time.replace('.000Z', 'Z'), d.reasons]),
    expected,
  );
  assert.deepEqual(keptIds(ds), expected.map(([iso]) => idOf(iso)));
  assert.deepEqual(reasonsOf(ds, idOf('2020-06-15T02:00:00Z')), []);
  assert.deepEqual(reasonsOf(ds, idOf('2023-06-13T02:00:00Z')), []);
});

// ---------------------------------------------------------------------------------------------------------------
// Hourly

test('hourly 5 and last 2 over two days, several backups an hour', async (t) => {
  const isos: string[] = [];
  for (let h = 0; h < 24; h++) for (const m of ['05', '25', '45']) isos.push(`2023-04-05T${String(h).padStart(2, '0')}:${m}:00Z`);
  for (const h of [0, 2]) for (const m of ['05', '25', '45']) isos.push(`2023-04-06T0${h}:${m}:00Z`); // 01:xx missing
  const rows: { zone: string | undefined; expected: [string, string[]][] }[] = [
    {
      zone: undefined, // UTC
      expected: [
        ['2023-04-06T02:45:00Z', ['last', 'hourly 2023-04-06 02']],
        ['2023-04-06T02:25:00Z', ['last']],
        ['2023-04-06T00:45:00Z', ['hourly 2023-04-06 00']], // hour 01 has no backup: not counted
        ['2023-04-05T23:45:00Z', ['hourly 2023-04-05 23']],
        ['2023-04-05T22:45:00Z', ['hourly 2023-04-05 22']],
        ['2023-04-05T21:45:00Z', ['hourly 2023-04-05 21']],
      ],
    },
    {
      // UTC+05:30: local hour H holds (H−6):45Z, (H−5):05Z and (H−5):25Z
      zone: 'Asia/Kolkata',
      expected: [
        ['2023-04-06T02:45:00Z', ['last', 'hourly 2023-04-06 08']], // 08:15
        ['2023-04-06T02:25:00Z', ['last', 'hourly 2023-04-06 07']], // 07:55 (07:35 is older)
        ['2023-04-06T00:45:00Z', ['hourly 2023-04-06 06']], // 06:15
        ['2023-04-06T00:25:00Z', ['hourly 2023-04-06 05']], // 05:55 (05:35 and 05:15 = 23:45Z are older)
        ['2023-04-05T23:25:00Z', ['hourly 2023-04-06 04']], // 04:55
      ],
    },
  ];
  for (const { zone, expected } of rows) {
    await t.test(zone ?? 'UTC', () => {
      const ds = apply(refs(isos), { hourly: 5, last: 2 }, zone);
      assert.deepEqual(ds.filter((d) => d.keep).map((d) => [d.id, d.reasons]), expected.map(([iso, r]) => [idOf(iso), r]));
    });
  }
});

test('hourly buckets are wall-clock hours: the repeated hour when clocks go back is one bucket', () => {
  // America/New_York, 2023-11-05: 06:00Z is 02:00 EDT → 01:00 EST
  const isos = ['2023-11-05T07:30:00Z', '2023-11-05T06:30:00Z', '2023-11-05T05:30:00Z', '2023-11-05T04:30:00Z'];
  const ny = apply(refs(isos), { hourly: 3 }, 'America/New_York');
  assert.deepEqual(ny.filter((d) => d.keep).map((d) => [d.id, d.reasons]), [
    [idOf('2023-11-05T07:30:00Z'), ['hourly 2023-11-05 02']], // 02:30 EST
    [idOf('2023-11-05T06:30:00Z'), ['hourly 2023-11-05 01']], // 01:30 EST; 05:30Z is 01:30 EDT, same bucket
    [idOf('2023-11-05T04:30:00Z'), ['hourly 2023-11-05 00']], // 00:30 EDT
  ]);
  const utc = apply(refs(isos), { hourly: 3 });
  assert.deepEqual(keptIds(utc), [idOf('2023-11-05T07:30:00Z'), idOf('2023-11-05T06:30:00Z'), idOf('2023-11-05T05:30:00Z')]);
});

// ---------------------------------------------------------------------------------------------------------------
// Ties, ISO weeks, time zones

test('same-second ties: the larger id counts as the newer', async (t) => {
  const a = ref('2023-04-05T10:15:00Z', 'aaaaaa');
  const b = ref('2023-04-05T10:15:00Z', 'bbbbbb');
  const rows: { policy: RetentionPolicy; expected: [BackupRef, string[]][] }[] = [
    { policy: { daily: 1 }, expected: [[b, ['daily 2023-04-05']]] },
    { policy: { last: 1 }, expected: [[b, ['last']]] },
    { policy: { daily: 2 }, expected: [[b, ['daily 2023-04-05']], [a, ['oldest daily 2023-04-05']]] },
  ];
  for (const { policy, expected } of rows) {
    for (const input of [[a, b], [b, a]]) {
      await t.test(`${describePolicy(policy)}, input ${input.map((x) => x.id.slice(-1)).join('')}`, () => {
        const ds = applyPolicy(input, policy);
        assert.deepEqual(ds.map((d) => d.id), [b.id, a.id]);
        assert.deepEqual(ds.filter((d) => d.keep).map((d) => [d.id, d.reasons]), expected.map(([x, r]) => [x.id, r]));
      });
    }
  }
});

test('ISO weeks belong to the ISO week-year', async (t) => {
  const rows: { name: string; isos: string[]; weekly: number; expected: [string, string][] }[] = [
    {
      // Thu 2020-12-31, Fri 2021-01-01 and Sun 2021-01-03 are 2020-W53; Mon 2021-01-04 is 2021-W01
      name: '2020-W53 / 2021-W01',
      isos: ['2020-12-31T12:00:00Z', '2021-01-01T12:00:00Z', '2021-01-03T12:00:00Z', '2021-01-04T12:00:00Z'],
      weekly: 2,
      expected: [['2021-01-04T12:00:00Z', 'weekly 2021-W01'], ['2021-01-03T12:00:00Z', 'weekly 2020-W53']],
    },
    {
      // Sun 2024-12-29 is 2024-W52; Mon 2024-12-30 and Sun 2025-01-05 are 2025-W01; Mon 2025-01-06 is 2025-W02
      name: '2024-W52 / 2025-W01 / 2025-W02',
      isos: ['2024-12-29T12:00:00Z', '2024-12-30T12:00:00Z', '2025-01-05T12:00:00Z', '2025-01-06T12:00:00Z'],
      weekly: 3,
      expected: [
        ['2025-01-06T12:00:00Z', 'weekly 2025-W02'],
        ['2025-01-05T12:00:00Z', 'weekly 2025-W01'],
        ['2024-12-29T12:00:00Z', 'weekly 2024-W52'],
      ],
    },
  ];
  for (const { name, isos, weekly, expected } of rows) {
    await t.test(name, () => {
      const ds = apply(refs(isos), { weekly });
      assert.deepEqual(ds.filter((d) => d.keep).map((d) => [d.id, d.reasons]), expected.map(([iso, r]) => [idOf(iso), [r]]));
    });
  }
});

test('buckets are computed on the calendar of the time zone', async (t) => {
  const A = '2023-03-10T23:30:00Z'; // 2023-03-10 in UTC, 2023-03-11 05:30 in Asia/Omsk (UTC+6)
  const B = '2023-03-11T00:30:00Z'; // 2023-03-11 in both
  const C = '2023-03-09T12:00:00Z'; // 2023-03-09 in both (18:00 in Omsk)
  const rows: { zone: string | undefined; daily: number; expected: [string, string][] }[] = [
    { zone: undefined, daily: 2, expected: [[B, 'daily 2023-03-11'], [A, 'daily 2023-03-10']] },
    { zone: 'UTC', daily: 2, expected: [[B, 'daily 2023-03-11'], [A, 'daily 2023-03-10']] },
    // A and B are the same local day: A is skipped and the second day kept is C's
    { zone: 'Asia/Omsk', daily: 2, expected: [[B, 'daily 2023-03-11'], [C, 'daily 2023-03-09']] },
    { zone: 'UTC', daily: 1, expected: [[B, 'daily 2023-03-11']] },
    { zone: 'Asia/Omsk', daily: 1, expected: [[B, 'daily 2023-03-11']] },
    // UTC−5: A is 18:30 on the 10th, B 19:30 on the 10th, C 07:00 on the 9th
    { zone: 'America/New_York', daily: 2, expected: [[B, 'daily 2023-03-10'], [C, 'daily 2023-03-09']] },
  ];
  for (const { zone, daily, expected } of rows) {
    await t.test(`${zone ?? 'default zone'}, daily ${daily}`, () => {
      const ds = apply(refs([A, B, C]), { daily }, zone);
      assert.deepEqual(ds.filter((d) => d.keep).map((d) => [d.id, d.reasons]), expected.map(([iso, r]) => [idOf(iso), [r]]));
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// A rule with count left keeps the oldest backup

test('a rule with count left keeps the oldest backup', async (t) => {
  const rows: { name: string; isos: string[]; policy: RetentionPolicy; expected: [string, string[]][] }[] = [
    {
      name: '3 backups on 3 days, daily 5: all kept, the oldest by its own day',
      isos: ['2023-03-07T10:00:00Z', '2023-03-06T10:00:00Z', '2023-03-05T10:00:00Z'],
      policy: { daily: 5 },
      expected: [
        ['2023-03-07T10:00:00Z', ['daily 2023-03-07']],
        ['2023-03-06T10:00:00Z', ['daily 2023-03-06']],
        ['2023-03-05T10:00:00Z', ['daily 2023-03-05']],
      ],
    },
    {
      name: 'the oldest shares its day with a newer one, daily 5: kept as the oldest',
      isos: ['2023-03-07T10:00:00Z', '2023-03-06T12:00:00Z', '2023-03-06T08:00:00Z'],
      policy: { daily: 5 },
      expected: [
        ['2023-03-07T10:00:00Z', ['daily 2023-03-07']],
        ['2023-03-06T12:00:00Z', ['daily 2023-03-06']],
        ['2023-03-06T08:00:00Z', ['oldest daily 2023-03-06']],
      ],
    },
    {
      name: 'same, daily 2: the count is used up before the oldest, which goes',
      isos: ['2023-03-07T10:00:00Z', '2023-03-06T12:00:00Z', '2023-03-06T08:00:00Z'],
      policy: { daily: 2 },
      expected: [
        ['2023-03-07T10:00:00Z', ['daily 2023-03-07']],
        ['2023-03-06T12:00:00Z', ['daily 2023-03-06']],
      ],
    },
    {
      // Mon 2023-03-06 and Tue 2023-03-07 are both 2023-W10
      name: 'every rule with count left marks it',
      isos: ['2023-03-07T10:00:00Z', '2023-03-06T12:00:00Z', '2023-03-06T08:00:00Z'],
      policy: { daily: 5, weekly: 5, last: 1 },
      expected: [
        ['2023-03-07T10:00:00Z', ['last', 'daily 2023-03-07', 'weekly 2023-W10']],
        ['2023-03-06T12:00:00Z', ['daily 2023-03-06']],
        ['2023-03-06T08:00:00Z', ['oldest daily 2023-03-06', 'oldest weekly 2023-W10']],
      ],
    },
    {
      name: 'unlimited (-1) always has count left',
      isos: ['2023-05-01T00:00:00Z', '2023-03-01T00:00:00Z', '2023-01-01T00:00:00Z'],
      policy: { yearly: -1 },
      expected: [
        ['2023-05-01T00:00:00Z', ['yearly 2023']],
        ['2023-01-01T00:00:00Z', ['oldest yearly 2023']],
      ],
    },
    {
      name: 'last N never has a same-bucket oldest: last 5 of 3 keeps them all plainly',
      isos: ['2023-03-06T12:00:00Z', '2023-03-06T11:00:00Z', '2023-03-06T10:00:00Z'],
      policy: { last: 5 },
      expected: [
        ['2023-03-06T12:00:00Z', ['last']],
        ['2023-03-06T11:00:00Z', ['last']],
        ['2023-03-06T10:00:00Z', ['last']],
      ],
    },
  ];
  for (const { name, isos, policy, expected } of rows) {
    await t.test(name, () => {
      const ds = apply(refs(isos), policy);
      assert.deepEqual(ds.filter((d) => d.keep).map((d) => [d.id, d.reasons]), expected.map(([iso, r]) => [idOf(iso), r]));
    });
  }
});

// ---------------------------------------------------------------------------------------------------------------
// within

test('within keeps everything at or after newest − duration', async (t) => {
  const rows: { name: string; within: string; zone?: string; isos: string[]; kept: string[] }[] = [
    {
      name: '2d: the last 48 h',
      within: '2d',
      isos: ['2023-05-10T12:00:00Z', '2023-05-09T00:00:00Z', '2023-05-08T12:00:00Z', '2023-05-08T11:59:59Z', '2023-05-07T12:00:00Z'],
      kept: ['2023-05-10T12:00:00Z', '2023-05-09T00:00:00Z', '2023-05-08T12:00:00Z'],
    },
    {
      name: '48h is the same in UTC',
      within: '48h',
      isos: ['2023-05-10T12:00:00Z', '2023-05-08T12:00:00Z', '2023-05-08T11:59:59Z'],
      kept: ['2023-05-10T12:00:00Z', '2023-05-08T12:00:00Z'],
    },
    {
      name: '1m from mid-March reaches back across February to the same day',
      within: '1m',
      isos: ['2023-03-15T12:00:00Z', '2023-03-01T00:00:00Z', '2023-02-15T12:00:00Z', '2023-02-15T11:59:59Z', '2023-02-01T00:00:00Z'],
      kept: ['2023-03-15T12:00:00Z', '2023-03-01T00:00:00Z', '2023-02-15T12:00:00Z'],
    },
    {
      // restic's Go AddDate would make 31 Feb into 3 Mar and drop 2 Mar; we clamp to the month's last day
      name: '1m from 31 March is 28 February (clamped)',
      within: '1m',
      isos: ['2023-03-31T10:00:00Z', '2023-03-02T10:00:00Z', '2023-02-28T10:00:00Z', '2023-02-28T09:59:59Z'],
      kept: ['2023-03-31T10:00:00Z', '2023-03-02T10:00:00Z', '2023-02-28T10:00:00Z'],
    },
    {
      name: '1m from 31 March of a leap year is 29 February',
      within: '1m',
      isos: ['2024-03-31T10:00:00Z', '2024-02-29T10:00:00Z', '2024-02-29T09:00:00Z'],
      kept: ['2024-03-31T10:00:00Z', '2024-02-29T10:00:00Z'],
    },
    {
      name: '1y from 29 February is 28 February',
      within: '1y',
      isos: ['2024-02-29T10:00:00Z', '2023-02-28T10:00:00Z', '2023-02-28T09:59:59Z'],
      kept: ['2024-02-29T10:00:00Z', '2023-02-28T10:00:00Z'],
    },
    {
      name: 'combined 1m2d3h: 2023-05-10 12:00 → 2023-04-08 12:00 → −3 h',
      within: '1m2d3h',
      isos: ['2023-05-10T12:00:00Z', '2023-04-08T09:00:00Z', '2023-04-08T08:59:59Z'],
      kept: ['2023-05-10T12:00:00Z', '2023-04-08T09:00:00Z'],
    },
    {
      // New York, clocks forward on 2023-03-12: 14:00 EDT (18:00Z) − 1 calendar day = 14:00 EST on the 11th (19:00Z)
      name: '1d across a DST change is a calendar day (23 h)',
      within: '1d',
      zone: 'America/New_York',
      isos: ['2023-03-12T18:00:00Z', '2023-03-11T19:00:00Z', '2023-03-11T18:59:59Z', '2023-03-11T18:00:00Z'],
      kept: ['2023-03-12T18:00:00Z', '2023-03-11T19:00:00Z'],
    },
    {
      name: '24h across the same DST change is 24 elapsed hours',
      within: '24h',
      zone: 'America/New_York',
      isos: ['2023-03-12T18:00:00Z', '2023-03-11T19:00:00Z', '2023-03-11T18:00:00Z', '2023-03-11T17:59:59Z'],
      kept: ['2023-03-12T18:00:00Z', '2023-03-11T19:00:00Z', '2023-03-11T18:00:00Z'],
    },
    {
      name: '1d in UTC for the same backups',
      within: '1d',
      isos: ['2023-03-12T18:00:00Z', '2023-03-11T19:00:00Z', '2023-03-11T18:00:00Z', '2023-03-11T17:59:59Z'],
      kept: ['2023-03-12T18:00:00Z', '2023-03-11T19:00:00Z', '2023-03-11T18:00:00Z'],
    },
    {
      // 2023-03-13 02:30 EDT (06:30Z) − 1d = 2023-03-12 02:30, which does not exist: 01:30 EST (06:30Z) is used
      name: 'a cutoff in the skipped hour moves before the gap',
      within: '1d',
      zone: 'America/New_York',
      isos: ['2023-03-13T06:30:00Z', '2023-03-12T06:30:00Z', '2023-03-12T06:29:59Z'],
      kept: ['2023-03-13T06:30:00Z', '2023-03-12T06:30:00Z'],
    },
    {
      // 2023-11-06 01:30 EST (06:30Z) − 1d = 2023-11-05 01:30, which happens twice: the earlier (05:30Z, EDT) is used
      name: 'a cutoff in the repeated hour takes the earlier one',
      within: '1d',
      zone: 'America/New_York',
      isos: ['2023-11-06T06:30:00Z', '2023-11-05T06:30:00Z', '2023-11-05T05:30:00Z', '2023-11-05T05:29:59Z'],
      kept: ['2023-11-06T06:30:00Z', '2023-11-05T06:30:00Z', '2023-11-05T05:30:00Z'],
    },
  ];
  for (const { name, within, zone, isos, kept } of rows) {
    await t.test(name, () => {
      const ds = apply(refs(isos), { within }, zone);
      assert.deepEqual(keptIds(ds), kept.map((iso) => idOf(iso)));
      const label = `within ${within}`;
      for (const d of ds) assert.deepEqual(d.reasons, d.keep ? [label] : []);
    });
  }
});

test('within is combined with the other rules', () => {
  const ds = apply(refs(['2023-05-10T12:00:00Z', '2023-05-09T12:00:00Z', '2023-05-01T12:00:00Z', '2023-04-01T12:00:00Z']), {
    within: '2d',
    monthly: 2,
  });
  assert.deepEqual(ds.map((d) => d.reasons), [
    ['monthly 2023-05', 'within 2d'],
    ['within 2d'],
    [],
    ['monthly 2023-04'],
  ]);
});

test('parseDuration', async (t) => {
  const good: [string, ReturnType<typeof parseDuration>][] = [
    ['1y2m3d4h', { years: 1, months: 2, days: 3, hours: 4 }],
    ['4h1y', { years: 1, months: 0, days: 0, hours: 4 }],
    ['36h', { years: 0, months: 0, days: 0, hours: 36 }],
    ['1m', { years: 0, months: 1, days: 0, hours: 0 }],
    ['0d', { years: 0, months: 0, days: 0, hours: 0 }],
  ];
  for (const [s, expected] of good) await t.test(`accepts ${JSON.stringify(s)}`, () => assert.deepEqual(parseDuration(s), expected));
  for (const s of ['', '5', '1w', '-1d', 'd', '1.5d', '1D', ' 1d', '1d ', '1d1d', '1d-2h', '99999999999999999999d']) {
    await t.test(`rejects ${JSON.stringify(s)}`, () => assert.throws(() => parseDuration(s), RangeError));
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Empty policies, the newest backup, invalid input

test('an empty policy keeps everything', async (t) => {
  const backups = refs(['2023-05-10T12:00:00Z', '2022-05-10T12:00:00Z', '2020-01-01T00:00:00Z']);
  // 0 is "rule off" (DR_KEEP_LAST=0 is allowed): these are all empty policies
  for (const policy of [{}, { last: 0 }, { last: 0, daily: 0, weekly: 0, monthly: 0, yearly: 0, hourly: 0 }, { within: '0d' }] as RetentionPolicy[]) {
    await t.test(JSON.stringify(policy), () => {
      assert.equal(isEmptyPolicy(policy), true);
      const ds = apply(backups, policy);
      assert.deepEqual(ds.map((d) => [d.keep, d.reasons]), [[true, ['no policy']], [true, ['no policy']], [true, ['no policy']]]);
    });
  }
  for (const policy of [{ last: 1 }, { yearly: -1 }, { within: '1h' }, { within: 'bogus' }] as RetentionPolicy[]) {
    await t.test(`not empty: ${JSON.stringify(policy)}`, () => assert.equal(isEmptyPolicy(policy), false));
  }
  assert.deepEqual(applyPolicy([], { daily: 3 }), []);
});

test('the newest backup is kept by every non-empty policy', async (t) => {
  // A lone backup far older than anything else still is the newest; so is the larger id of a tie.
  const backups = [ref('2023-05-10T12:00:00Z', 'aaaaaa'), ref('2023-05-10T12:00:00Z', 'ffffff'), ref('2010-01-01T00:00:00Z')];
  for (const policy of [{ last: 1 }, { hourly: 1 }, { yearly: 1 }, { within: '1h' }, { last: 0, daily: 1 }] as RetentionPolicy[]) {
    await t.test(JSON.stringify(policy), () => {
      const ds = apply(backups, policy);
      assert.equal(ds[0]!.id, idOf('2023-05-10T12:00:00Z', 'ffffff'));
      assert.equal(ds[0]!.keep, true);
      assert.ok(!ds[0]!.reasons.includes('newest (never removed)'), 'a rule keeps it');
    });
  }
});

test('applyPolicy rejects what it cannot decide on safely', async (t) => {
  const ok = refs(['2023-05-10T12:00:00Z']);
  const rows: [string, () => unknown][] = [
    ['a count below -1', () => applyPolicy(ok, { daily: -2 })],
    ['a fractional count', () => applyPolicy(ok, { last: 1.5 })],
    ['a NaN count', () => applyPolicy(ok, { weekly: Number.NaN })],
    ['a malformed within', () => applyPolicy(ok, { within: '1w' })],
    ['an unknown time zone', () => applyPolicy(ok, { daily: 1 }, 'Mars/Olympus')],
    ['an invalid time', () => applyPolicy([{ id: 'x', time: new Date('nope') }], { daily: 1 })],
    ['an id listed twice', () => applyPolicy([...ok, ...ok], { daily: 1 })],
  ];
  for (const [name, fn] of rows) await t.test(name, () => assert.throws(fn, RangeError));
});

// ---------------------------------------------------------------------------------------------------------------
// parsePolicy, describePolicy

test('parsePolicy reports every malformed variable at once', () => {
  const { policy, problems } = parsePolicy({
    DR_KEEP_LAST: 'abc',
    DR_KEEP_HOURLY: '-2',
    DR_KEEP_DAILY: '1.5',
    DR_KEEP_WEEKLY: '   ', // blank: unset, not a problem
    DR_KEEP_MONTHLY: ' 12 ',
    DR_KEEP_YEARLY: '+3',
    DR_KEEP_WITHIN: '1w',
    DR_KEEP_DAYLY: '7', // misspelt
    TZ: 'Mars/Olympus',
  });
  assert.deepEqual(policy, { monthly: 12 });
  const named = ['DR_KEEP_LAST', 'DR_KEEP_HOURLY', 'DR_KEEP_DAILY', 'DR_KEEP_YEARLY', 'DR_KEEP_WITHIN', 'DR_KEEP_DAYLY', 'TZ'];
  assert.equal(problems.length, named.length, problems.join('\n'));
  for (const [i, name] of named.entries()) {
    const p = problems[i]!;
    assert.ok(p.startsWith(`${name}=`) || p.startsWith(`${name} `), `problem ${i} should name ${name}: ${p}`);
    assert.match(p, /expected/, p);
  }
  assert.match(problems[0]!, /whole number/);
  assert.match(problems[4]!, /"1w"/);
  assert.match(problems[4]!, /y \(years\), m \(months\), d \(days\), h \(hours\)/);
});

test('parsePolicy accepts valid values', async (t) => {
  const rows: [Record<string, string | undefined>, RetentionPolicy][] = [
    [{}, {}],
    [{ DR_KEEP_LAST: undefined, DR_KEEP_DAILY: '' }, {}],
    [{ DR_KEEP_LAST: '0' }, { last: 0 }],
    [{ DR_KEEP_DAILY: '-1', DR_KEEP_WEEKLY: '4', DR_KEEP_WITHIN: '1y2m3d4h', TZ: 'Europe/Berlin', DR_OTHER: 'x' },
      { daily: -1, weekly: 4, within: '1y2m3d4h' }],
    [{ DR_KEEP_LAST: '3', DR_KEEP_HOURLY: '24', DR_KEEP_DAILY: '7', DR_KEEP_WEEKLY: '4', DR_KEEP_MONTHLY: '12', DR_KEEP_YEARLY: '10', DR_KEEP_WITHIN: ' 30d ' },
      { last: 3, hourly: 24, daily: 7, weekly: 4, monthly: 12, yearly: 10, within: '30d' }],
  ];
  for (const [env, expected] of rows) {
    await t.test(JSON.stringify(env), () => assert.deepEqual(parsePolicy(env), { policy: expected, problems: [] }));
  }
  await t.test('DR_KEEP_LAST=0 alone is an empty policy: everything is kept', () => {
    const { policy } = parsePolicy({ DR_KEEP_LAST: '0' });
    assert.equal(isEmptyPolicy(policy), true);
    const ds = applyPolicy(refs(['2023-05-10T12:00:00Z', '2023-05-09T12:00:00Z']), policy);
    assert.deepEqual(ds.map((d) => d.keep), [true, true]);
  });
});

test('describePolicy', async (t) => {
  const rows: [RetentionPolicy, string][] = [
    [{ last: 3, daily: 7, weekly: 4, within: '30d' }, 'last 3, daily 7, weekly 4, within 30d'],
    [{ within: '30d', weekly: 4, daily: 7, last: 3 }, 'last 3, daily 7, weekly 4, within 30d'],
    [{ hourly: 24, monthly: 12, yearly: -1, within: '4h1y' }, 'hourly 24, monthly 12, yearly unlimited, within 1y4h'],
    [{ last: 0, daily: 2 }, 'daily 2'],
    [{}, 'no policy (keep all backups)'],
    [{ last: 0, within: '0h' }, 'no policy (keep all backups)'],
  ];
  for (const [policy, expected] of rows) await t.test(expected, () => assert.equal(describePolicy(policy), expected));
});
