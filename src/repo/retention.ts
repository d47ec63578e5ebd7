/**
 * Retention policy: which committed backups to keep, with the semantics of restic's `forget`
 * (https://restic.readthedocs.io/en/stable/060_forget.html). Pure logic: no clock, no I/O.
 *
 * - Backups are ordered newest first; two backups with the same time are ordered by id, the larger id
 *   counting as the newer.
 * - `last N` keeps the N newest backups.
 * - `hourly/daily/weekly/monthly/yearly N` walk from the newest to the oldest backup and keep the first
 *   (newest) backup of each new calendar bucket, for N buckets (-1: every bucket). Buckets are computed on the
 *   wall-clock calendar of the given IANA time zone: hour `YYYY-MM-DD HH`, day `YYYY-MM-DD`, ISO 8601 week
 *   `YYYY-Www` (the year is the ISO week-year: 2021-01-01 is in 2020-W53), month `YYYY-MM`, year `YYYY`.
 *   Buckets with no backup do not count: `daily 7` keeps the newest backup of the 7 newest days that have one.
 * - `within D` keeps every backup at or after (newest backup's time − D).
 * - Rules are OR-ed; a kept backup lists every rule that keeps it.
 * - No rule set (all counts unset or 0, no or a zero `within`): everything is kept (reason "no policy").
 * - The newest backup is never removed.
 */

export interface RetentionPolicy {
  last?: number;
  hourly?: number;
  daily?: number;
  weekly?: number;
  monthly?: number;
  yearly?: number;
  /** a duration like "1y2m3d4h" (see parseDuration): keep everything newer than (newest backup's time − duration) */
  within?: string;
}

/** A committed backup (only those take part in retention). */
export interface BackupRef {
  id: string;
  time: Date;
}

export interface Decision {
  id: string;
  /** ISO 8601, UTC */
  time: string;
  keep: boolean;
  /**
   * Every rule that keeps the backup, in the order last, hourly, daily, weekly, monthly, yearly, within:
   * "last", "hourly 2023-04-05 10", "daily 2023-04-05", "weekly 2023-W14", "monthly 2023-04", "yearly 2023",
   * "oldest daily 2023-04-05" (see applyPolicy), "within 7d"; or "no policy"; or "newest (never removed)".
   * Empty when the backup is to be removed.
   */
  reasons: string[];
}

export interface RetentionDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

type CountRule = 'last' | 'hourly' | 'daily' | 'weekly' | 'monthly' | 'yearly';

const COUNT_RULES: readonly (readonly [variable: string, rule: CountRule])[] = [
  ['DR_KEEP_LAST', 'last'],
  ['DR_KEEP_HOURLY', 'hourly'],
  ['DR_KEEP_DAILY', 'daily'],
  ['DR_KEEP_WEEKLY', 'weekly'],
  ['DR_KEEP_MONTHLY', 'monthly'],
  ['DR_KEEP_YEARLY', 'yearly'],
];
const WITHIN_VARIABLE = 'DR_KEEP_WITHIN';
const KNOWN_VARIABLES = new Set([...COUNT_RULES.map(([v]) => v), WITHIN_VARIABLE]);

const DURATION_EXPECTED =
  'expected one or more <number><unit> parts with units y (years), m (months), d (days), h (hours), e.g. 7d, 36h, 1y6m';
const COUNT_EXPECTED = 'expected a whole number ≥ 0 (how many to keep; 0 turns the rule off) or -1 (unlimited)';

// ---------------------------------------------------------------------------------------------------------------
// Policy from the environment

/**
 * Reads DR_KEEP_LAST/HOURLY/DAILY/WEEKLY/MONTHLY/YEARLY (whole numbers ≥ 0, or -1 for unlimited) and DR_KEEP_WITHIN
 * (a duration). Unset or blank variables are left out of the policy. Every malformed value is one problem naming
 * its variable, and is left out of the policy: a caller must not apply a policy that came with problems (a
 * half-read policy can remove backups the operator meant to keep).
 *
 * 0 is allowed and means "this rule is off" (restic: a 0 count is an unset option): DR_KEEP_LAST=0 alone is an
 * empty policy, which keeps everything.
 *
 * Also reported: any other non-blank DR_KEEP_* variable (a misspelt DR_KEEP_DAYLY would otherwise silently drop
 * a rule) and a TZ that is set but is not an IANA time zone this Node knows (the retention calendar uses it).
 */
export function parsePolicy(env: Record<string, string | undefined>): { policy: RetentionPolicy; problems: string[] } {
  const policy: RetentionPolicy = {};
  const problems: string[] = [];
  for (const [variable, rule] of COUNT_RULES) {
    const given = env[variable];
    const raw = given?.trim();
    if (raw === undefined || raw === '') continue;
    const n = Number(raw);
    if (/^(?:\d+|-1)$/.test(raw) && Number.isSafeInteger(n)) policy[rule] = n;
    else problems.push(`${variable}=${JSON.stringify(given)} is not valid: ${COUNT_EXPECTED}`);
  }
  const within = env[WITHIN_VARIABLE]?.trim();
  if (within !== undefined && within !== '') {
    try {
      parseDuration(within);
      policy.within = within;
    } catch (err) {
      problems.push(`${WITHIN_VARIABLE}=${JSON.stringify(env[WITHIN_VARIABLE])} is not valid: ${(err as Error).message}`);
    }
  }
  for (const [variable, value] of Object.entries(env)) {
    if (variable.startsWith('DR_KEEP_') && !KNOWN_VARIABLES.has(variable) && value !== undefined && value.trim() !== '') {
      problems.push(`${variable} is not a retention setting: expected one of ${[...KNOWN_VARIABLES].join(', ')}`);
    }
  }
  const tz = env['TZ']?.trim();
  if (tz) {
    try {
      calendarOf(tz);
    } catch (err) {
      problems.push(`TZ=${JSON.stringify(env['TZ'])} is not valid: ${(err as Error).message}`);
    }
  }
  return { policy, problems };
}

/** True when no rule is set: every count unset or 0, and `within` unset or a zero duration. */
export function isEmptyPolicy(p: RetentionPolicy): boolean {
  for (const [, rule] of COUNT_RULES) {
    const n = p[rule];
    if (n !== undefined && n !== 0) return false;
  }
  if (p.within !== undefined) {
    let d: RetentionDuration;
    try {
      d = parseDuration(p.within);
    } catch {
      return false; // set but malformed: not "no policy" (applyPolicy rejects it)
    }
    if (!isZeroDuration(d)) return false;
  }
  return true;
}

/** e.g. "last 3, daily 7, weekly 4, yearly unlimited, within 30d"; "no policy (keep all backups)" when empty. */
export function describePolicy(p: RetentionPolicy): string {
  const parts: string[] = [];
  for (const [, rule] of COUNT_RULES) {
    const n = p[rule];
    if (n === undefined || n === 0) continue;
    if (n === -1) parts.push(`${rule} unlimited`);
    else if (Number.isSafeInteger(n) && n > 0) parts.push(`${rule} ${n}`);
    else parts.push(`${rule} ${n} (invalid)`);
  }
  if (p.within !== undefined) {
    try {
      const d = parseDuration(p.within);
      if (!isZeroDuration(d)) parts.push(`within ${formatDuration(d)}`);
    } catch {
      parts.push(`within ${JSON.stringify(p.within)} (invalid)`);
    }
  }
  return parts.length ? parts.join(', ') : 'no policy (keep all backups)';
}

// ---------------------------------------------------------------------------------------------------------------
// Durations

/**
 * Parses a restic-style duration: one or more `<digits><unit>` parts, units y (years), m (MONTHS, not minutes),
 * d (days), h (hours), each unit at most once, in any order ("1y2m3d4h", "36h", "2d12h"). Zero parts are allowed
 * ("0d" is a zero duration). Stricter than restic, which also takes negative numbers and repeated units.
 * Throws a RangeError saying what is expected.
 */
export function parseDuration(s: string): RetentionDuration {
  if (typeof s !== 'string' || !/^(?:\d+[ymdh])+$/.test(s)) {
    throw new RangeError(`${JSON.stringify(s)} is not a duration: ${DURATION_EXPECTED}`);
  }
  const out: RetentionDuration = { years: 0, months: 0, days: 0, hours: 0 };
  const field = { y: 'years', m: 'months', d: 'days', h: 'hours' } as const;
  const seen = new Set<string>();
  for (const m of s.matchAll(/(\d+)([ymdh])/g)) {
    const digits = m[1]!;
    const unit = m[2] as keyof typeof field;
    if (seen.has(unit)) throw new RangeError(`${JSON.stringify(s)} is not a duration: unit ${unit} appears twice; ${DURATION_EXPECTED}`);
    seen.add(unit);
    const n = Number(digits);
    if (!Number.isSafeInteger(n)) throw new RangeError(`${JSON.stringify(s)} is not a duration: ${digits} is too large`);
    out[field[unit]] = n;
  }
  return out;
}

function isZeroDuration(d: RetentionDuration): boolean {
  return d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0;
}

/** Canonical form: y, m, d, h in that order, zero parts left out ("0h" for a zero duration). */
function formatDuration(d: RetentionDuration): string {
  const s = (d.years ? `${d.years}y` : '') + (d.months ? `${d.months}m` : '') + (d.days ? `${d.days}d` : '') + (d.hours ? `${d.hours}h` : '');
  return s || '0h';
}

// ---------------------------------------------------------------------------------------------------------------
// Calendar (Intl only)

interface WallTime {
  year: number;
  month: number; // 1–12
  day: number;
  hour: number;
  minute: number;
  second: number;
  ms: number;
}

type Calendar = (t: number) => WallTime;

const calendars = new Map<string, Calendar>();

/** Wall-clock fields of an instant in `timeZone`; throws a RangeError for a zone Intl does not know. */
function calendarOf(timeZone: string): Calendar {
  const cached = calendars.get(timeZone);
  if (cached) return cached;
  let fmt: Intl.DateTimeFormat;
  try {
    fmt = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch {
    throw new RangeError(`unknown time zone ${JSON.stringify(timeZone)}: expected an IANA time zone name like UTC or Europe/Berlin`);
  }
  const cal: Calendar = (t) => {
    const f: Record<string, string> = {};
    for (const part of fmt.formatToParts(t)) f[part.type] = part.value;
    let year = Number(f['year']);
    if (f['era'] === 'BC' || f['era'] === 'B') year = 1 - year;
    return {
      year,
      month: Number(f['month']),
      day: Number(f['day']),
      hour: Number(f['hour']),
      minute: Number(f['minute']),
      second: Number(f['second']),
      ms: ((t % 1000) + 1000) % 1000, // zone offsets are whole seconds
    };
  };
  calendars.set(timeZone, cal);
  return cal;
}

/** Milliseconds of a wall time read as UTC; out-of-range fields overflow like Date's (day 0 = last of the previous month). */
function utcOf(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, ms = 0): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day); // unlike Date.UTC, does not map years 0–99 to 1900–1999
  d.setUTCHours(hour, minute, second, ms);
  return d.getTime();
}

const DAY_MS = 86_400_000;
/** Largest |time value| a Date holds, less the margin wallToInstant looks around. */
const SAFE_MS = 8.64e15 - 2 * DAY_MS;

function wallMsOf(w: WallTime): number {
  return utcOf(w.year, w.month, w.day, w.hour, w.minute, w.second, w.ms);
}

/**
 * The instant at which the clocks of the zone show `wall` (given as milliseconds read as UTC). A wall time that
 * occurs twice (clocks set back) gives the earlier instant; one that does not occur (clocks set forward, e.g.
 * 02:30 in a 02:00→03:00 jump) gives the instant as far before the gap as the wall time is into it (01:30) —
 * both err towards a longer `within`, keeping more.
 */
function wallToInstant(wall: number, cal: Calendar): number {
  const offsetAt = (t: number) => wallMsOf(cal(t)) - t;
  const offsets = new Set([offsetAt(wall - DAY_MS), offsetAt(wall), offsetAt(wall + DAY_MS)]);
  const candidates = [...offsets].map((o) => ({ t: wall - o, ok: offsetAt(wall - o) === o }));
  const valid = candidates.filter((c) => c.ok);
  return Math.min(...(valid.length ? valid : candidates).map((c) => c.t));
}

/**
 * newest − d: years and months on the zone's calendar (the day of month clamped to the target month's length:
 * 31 Mar − 1m = 28/29 Feb), then days on the calendar (keeping the wall-clock time), then hours as elapsed time.
 * restic does the same except that Go's AddDate overflows instead of clamping (31 Mar − 1m = 3 Mar), which keeps
 * less. -Infinity when the result is beyond the range of Date (keep everything).
 */
function subtractDuration(newest: number, d: RetentionDuration, cal: Calendar): number {
  const w = cal(newest);
  const monthIndex = w.year * 12 + (w.month - 1) - d.years * 12 - d.months;
  if (!Number.isSafeInteger(monthIndex)) return -Infinity;
  const year = Math.floor(monthIndex / 12);
  const month = monthIndex - year * 12 + 1;
  const lastDay = new Date(utcOf(year, month + 1, 0)).getUTCDate();
  const wall = utcOf(year, month, Math.min(w.day, lastDay) - d.days, w.hour, w.minute, w.second, w.ms);
  if (!Number.isFinite(wall) || Math.abs(wall) > SAFE_MS) return -Infinity;
  const cutoff = wallToInstant(wall, cal) - d.hours * 3_600_000;
  return Number.isFinite(cutoff) ? cutoff : -Infinity;
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** ISO 8601 week of a calendar date: `YYYY-Www`, YYYY being the week-year (the year of the week's Thursday). */
function isoWeek(year: number, month: number, day: number): string {
  const date = utcOf(year, month, day);
  const weekday = ((new Date(date).getUTCDay() + 6) % 7) + 1; // Monday 1 … Sunday 7
  const thursday = new Date(date + (4 - weekday) * DAY_MS);
  const weekYear = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - utcOf(weekYear, 1, 1)) / DAY_MS / 7) + 1;
  return `${pad(weekYear, 4)}-W${pad(week, 2)}`;
}

// ---------------------------------------------------------------------------------------------------------------
// Applying a policy

interface Bucketed {
  rule: CountRule;
  key: (w: WallTime, index: number) => string;
}

const BUCKETED: readonly Bucketed[] = [
  { rule: 'last', key: (_w, index) => String(index) }, // every backup is its own bucket
  { rule: 'hourly', key: (w) => `${pad(w.year, 4)}-${pad(w.month, 2)}-${pad(w.day, 2)} ${pad(w.hour, 2)}` },
  { rule: 'daily', key: (w) => `${pad(w.year, 4)}-${pad(w.month, 2)}-${pad(w.day, 2)}` },
  { rule: 'weekly', key: (w) => isoWeek(w.year, w.month, w.day) },
  { rule: 'monthly', key: (w) => `${pad(w.year, 4)}-${pad(w.month, 2)}` },
  { rule: 'yearly', key: (w) => pad(w.year, 4) },
];

/** Throws a RangeError for counts other than whole numbers ≥ -1 and for a malformed `within`. */
function checkPolicy(p: RetentionPolicy): RetentionDuration | undefined {
  for (const [, rule] of COUNT_RULES) {
    const n = p[rule];
    if (n !== undefined && !(Number.isSafeInteger(n) && n >= -1)) {
      throw new RangeError(`retention rule ${rule} ${n} is invalid: ${COUNT_EXPECTED}`);
    }
  }
  return p.within === undefined ? undefined : parseDuration(p.within);
}

/**
 * One decision per backup, newest first (ties in time: the larger id first).
 *
 * Bucketed rules (restic's algorithm): a rule with count N > 0 (or -1) walks the backups from the newest to the
 * oldest and keeps a backup when its bucket differs from that of the backup the rule kept last, decrementing N;
 * it stops when N reaches 0.
 *
 * "A rule with count left keeps the oldest" (restic ≥ 0.16, restic#3624 / #4366): when the walk reaches the
 * oldest backup and the rule's count is not used up, the oldest backup is kept by that rule even if its bucket is
 * the same as the previous kept one's — so a young repository keeps its first backup ("keep 2 yearly" started in
 * March keeps the first backup of that year, not just the newest). When the oldest backup is kept only because of
 * this, the reason is prefixed "oldest " ("oldest daily 2023-03-06"), as restic does since restic#5039 (2024); an
 * oldest backup that opens a bucket of its own is kept by the ordinary rule and gets the ordinary reason. Either
 * way it costs one count, which no longer matters (it is the last backup).
 *
 * `within`: kept when time ≥ newest − duration (restic: strictly after; ≥ keeps the boundary backup). The
 * reference is the newest backup passed in — unlike restic, a backup dated in the future is not skipped for it.
 *
 * Throws a RangeError for an invalid policy (see checkPolicy), an unknown time zone, a backup with an invalid
 * time, or an id listed twice (one copy could be marked for removal while the other is kept).
 */
export function applyPolicy(backups: BackupRef[], policy: RetentionPolicy, timeZone = 'UTC'): Decision[] {
  const within = checkPolicy(policy);
  const cal = calendarOf(timeZone);
  const seen = new Set<string>();
  const list = backups.map((b) => {
    const t = b.time instanceof Date ? b.time.getTime() : Number.NaN;
    if (!Number.isFinite(t)) throw new RangeError(`backup ${b.id} has an invalid time`);
    if (seen.has(b.id)) throw new RangeError(`backup ${b.id} is listed twice`);
    seen.add(b.id);
    return { id: b.id, t };
  });
  list.sort((a, b) => b.t - a.t || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  const decisions: Decision[] = list.map((b) => ({ id: b.id, time: new Date(b.t).toISOString(), keep: false, reasons: [] }));
  if (list.length === 0) return decisions;

  if (isEmptyPolicy(policy)) {
    for (const d of decisions) {
      d.keep = true;
      d.reasons.push('no policy');
    }
    return decisions;
  }

  const walls = list.map((b) => cal(b.t));
  const oldest = list.length - 1;
  for (const { rule, key } of BUCKETED) {
    let left = policy[rule] ?? 0;
    let lastKey: string | undefined;
    for (let i = 0; i <= oldest && left !== 0; i++) {
      const k = key(walls[i]!, i);
      const opensBucket = k !== lastKey;
      if (!opensBucket && i !== oldest) continue;
      const label = rule === 'last' ? 'last' : `${rule} ${k}`;
      decisions[i]!.reasons.push(opensBucket ? label : `oldest ${label}`);
      lastKey = k;
      if (left > 0) left--;
    }
  }

  if (within && !isZeroDuration(within)) {
    const cutoff = subtractDuration(list[0]!.t, within, cal);
    const label = `within ${formatDuration(within)}`;
    list.forEach((b, i) => {
      if (b.t >= cutoff) decisions[i]!.reasons.push(label);
    });
  }

  for (const d of decisions) d.keep = d.reasons.length > 0;
  const newest = decisions[0]!;
  if (!newest.keep) {
    // Unreachable for a valid non-empty policy (every active rule keeps the newest backup); a safety net.
    newest.keep = true;
    newest.reasons.push('newest (never removed)');
  }
  return decisions;
}
