/**
 * Discovery: what the stack is made of, found through the Docker API. Only containers and volumes whose
 * names start with DR_VOLUME_PREFIX are considered; labels refine it:
 *   dr.stop-during-backup=true  a writer, stopped while its volumes are archived
 *   dr.exclude=true             (container or volume) left out entirely
 *   dr.dump=mariadb|postgres|redis  the engine, where detection from the image or processes is not enough
 * Copies a restore or drill made are not the stack (copyOf): volumes of a `--suffix` restore
 * (dr.restored-from), a drill's scratch volumes (dr.drill) and --force's safety copies (dr.pre-restore-of)
 * are left out of backups unless asked for (DR_INCLUDE_RESTORED, DR_EXPECTED_VOLUMES, or a stack container
 * mounts it), and listed by dr status as leftovers with the command that removes them.
 */
import type Docker from 'dockerode';
import { errorMessage, DrError } from '../core/errors.ts';
import { envMap } from '../docker/client.ts';
import { scrub } from '../core/redact.ts';
import { ENGINES, ENGINE_KINDS, engineFromImage, engineFromProcesses } from '../db/engines.ts';
import type { DbTarget, DatabaseInfo } from '../db/engine.ts';
import type { Config } from '../core/config.ts';
import { type EngineKind } from '../repo/manifest.ts';

export const LABEL_STOP = 'dr.stop-during-backup';
export const LABEL_EXCLUDE = 'dr.exclude';
export const LABEL_DUMP = 'dr.dump';
/** set by a --suffix restore on the volumes it creates: `<backup id>:<original volume>` */
export const LABEL_RESTORED_FROM = 'dr.restored-from';
/** set by the drill (dr verify --level full) on its scratch volumes */
export const LABEL_DRILL = 'dr.drill';
/** set by restore --force on the volume that keeps a target's old content */
export const LABEL_PRE_RESTORE_OF = 'dr.pre-restore-of';

export interface Problem {
  /** the container, volume or variable at fault */
  subject: string;
  message: string;
  hint?: string;
}

export interface VolumeInfo {
  name: string;
  expected: boolean;
  excluded: boolean;
  /** app: archived as files; database: a DB's data (covered by its dump in hot mode); unused: no container mounts it */
  role: 'app' | 'database' | 'unused';
  mountedBy: { container: string; path: string; readOnly: boolean }[];
  driver: string;
  labels: Record<string, string>;
  /** a copy a restore or drill made (see copyOf), or null for a volume of the stack */
  copy: VolumeCopy | null;
}

/** What a restore or drill made: not part of the stack. */
export interface VolumeCopy {
  kind: 'restored' | 'drill' | 'pre-restore';
  /** the volume it is a copy of */
  of: string;
  /** the backup it was restored from (null when the labels do not say) */
  backupId: string | null;
  /** containers of the stack (not dr.exclude) that mount it: then it is in use, not a leftover */
  inUseBy: string[];
  /** backed up anyway, and why (DR_INCLUDE_RESTORED, DR_EXPECTED_VOLUMES, mounted by a stack container); null: left out */
  includedBecause: string | null;
}

/** A copy no stack container uses: dr status lists it with the command that removes it. */
export interface Leftover {
  name: string;
  kind: VolumeCopy['kind'];
  of: string;
  backupId: string | null;
  createdAt: string | null;
  ageSeconds: number | null;
  /** false: left out of backups (the default) */
  backedUp: boolean;
  /** the exact command that removes it */
  remove: string;
}

export interface ContainerInfo {
  name: string;
  id: string;
  image: string;
  imageId: string;
  state: string;
  health: string | null;
  running: boolean;
  excluded: boolean;
  writer: boolean;
  engine: EngineKind | null;
  engineSource: 'label' | 'image' | 'process' | null;
  composeService: string | null;
  /** containers this one depends on (compose depends_on) */
  dependsOn: string[];
  mounts: { volume: string; path: string; readOnly: boolean }[];
}

export interface Discovery {
  prefix: string;
  docker: { endpoint: string; serverVersion: string };
  volumes: VolumeInfo[];
  containers: ContainerInfo[];
  databases: DatabaseInfo[];
  /** writers in the order they are stopped (dependents first); started again in reverse */
  stopOrder: string[];
  /** the writers grouped into waves stopped together (stopWavesOf) */
  stopWaves: string[][];
  /** copies made by restores and drills that no stack container uses (left out of backups unless asked for) */
  leftovers: Leftover[];
  problems: Problem[];
}

/** Internal handles for later stages (never serialised: the env may hold secrets). */
export interface DiscoveryHandles {
  containers: Map<string, DbTarget>;
}

type DiscoverConfig = Pick<Config, 'volumePrefix' | 'expectedVolumes'> & { includeRestored?: boolean };

const isTrue = (v: string | undefined) => v !== undefined && ['true', '1', 'yes', 'on'].includes(v.toLowerCase());

/**
 * Is this volume a copy a restore or drill made? From its labels: dr.drill (a drill's scratch volume),
 * dr.restored-from `<id>:<volume>` (a --suffix restore), dr.pre-restore-of `<volume>` (--force's safety copy;
 * its backup is the dr.pre-restore-backup label when set). `inUseBy` and `includedBecause` are left empty here.
 */
export function copyOf(labels: Record<string, string>): VolumeCopy | null {
  const from = labels[LABEL_RESTORED_FROM];
  const parsed = from ? /^([^:]+):(.+)$/.exec(from) : null;
  const backupId = parsed?.[1] ?? null;
  const of = parsed?.[2] ?? from ?? '';
  if (labels[LABEL_DRILL] !== undefined) return { kind: 'drill', of: of || '?', backupId, inUseBy: [], includedBecause: null };
  if (from) return { kind: 'restored', of: of || '?', backupId, inUseBy: [], includedBecause: null };
  const pre = labels[LABEL_PRE_RESTORE_OF];
  if (pre) return { kind: 'pre-restore', of: pre, backupId: labels['dr.pre-restore-backup'] ?? null, inUseBy: [], includedBecause: null };
  return null;
}

/**
 * Whether a copy is backed up after all, and why: a drill's scratch volume never; a copy a container of
 * the stack mounts is in use as the stack's data (e.g. compose was switched over to it); a --suffix copy
 * when DR_EXPECTED_VOLUMES lists it or DR_INCLUDE_RESTORED=true. null: left out.
 * dr.exclude=true (which --force's copies carry) leaves a volume out whatever this says.
 */
export function includeCopyBecause(name: string, copy: VolumeCopy, opts: { includeRestored: boolean; expected: readonly string[] }): string | null {
  if (copy.kind === 'drill') return null;
  if (copy.inUseBy.length) return `mounted by ${copy.inUseBy.join(', ')}`;
  if (copy.kind === 'pre-restore') return null;
  if (opts.expected.includes(name)) return 'listed in DR_EXPECTED_VOLUMES';
  if (opts.includeRestored) return 'DR_INCLUDE_RESTORED=true';
  return null;
}

/** copyOf + who of the stack uses it + includeCopyBecause. `stackUsers`: containers of the stack (not dr.exclude) mounting it. */
function classifyCopy(name: string, labels: Record<string, string>, stackUsers: string[], config: { includeRestored?: boolean; expectedVolumes: readonly string[] }): VolumeCopy | null {
  const copy = copyOf(labels);
  if (!copy) return null;
  copy.inUseBy = [...new Set(stackUsers)].sort();
  copy.includedBecause = includeCopyBecause(name, copy, { includeRestored: config.includeRestored === true, expected: config.expectedVolumes });
  return copy;
}

/**
 * The leftovers only (two list calls, no inspect, no database probe): what `dr backup` reports as left out.
 * Same classification as discover().
 */
export async function findLeftovers(docker: Docker, config: DiscoverConfig): Promise<Leftover[]> {
  const prefix = config.volumePrefix;
  const [volList, ctrList] = await Promise.all([docker.listVolumes(), docker.listContainers({ all: true })]);
  const stack = ctrList.filter((c) => (c.Names[0] ?? '').replace(/^\//, '').startsWith(prefix) && !isTrue(c.Labels?.[LABEL_EXCLUDE]));
  const created = new Map<string, string>();
  const volumes: VolumeInfo[] = [];
  for (const v of volList.Volumes ?? []) {
    if (!v.Name.startsWith(prefix)) continue;
    const labels = (v.Labels ?? {}) as Record<string, string>;
    const users = stack.filter((c) => (c.Mounts ?? []).some((m) => m.Type === 'volume' && m.Name === v.Name)).map((c) => (c.Names[0] ?? '').replace(/^\//, ''));
    const copy = classifyCopy(v.Name, labels, users, config);
    if (!copy) continue;
    const at = (v as { CreatedAt?: string }).CreatedAt;
    if (at) created.set(v.Name, at);
    volumes.push({ name: v.Name, expected: config.expectedVolumes.includes(v.Name), excluded: isTrue(labels[LABEL_EXCLUDE]) || copy.includedBecause === null,
      role: 'unused', mountedBy: [], driver: v.Driver, labels, copy });
  }
  return leftoversOf(volumes, created);
}

/** The leftovers among the volumes: copies no stack container uses, oldest first, each with its removal command. */
export function leftoversOf(volumes: readonly VolumeInfo[], createdAt: ReadonlyMap<string, string>, now = Date.now()): Leftover[] {
  return volumes
    .filter((v) => v.copy && v.copy.inUseBy.length === 0)
    .map((v) => {
      const at = createdAt.get(v.name) ?? null;
      const t = at ? Date.parse(at) : NaN;
      return {
        name: v.name, kind: v.copy!.kind, of: v.copy!.of, backupId: v.copy!.backupId, createdAt: at,
        ageSeconds: Number.isFinite(t) ? Math.max(0, Math.round((now - t) / 1000)) : null,
        backedUp: !v.excluded, remove: `docker volume rm ${v.name}`,
      };
    })
    .sort((a, b) => (a.createdAt ?? '').localeCompare(b.createdAt ?? '') || a.name.localeCompare(b.name));
}

/** The stack as it is now: its containers, volumes, databases and writers, and every problem found on the way. */
export async function discover(docker: Docker, config: DiscoverConfig, endpoint: string): Promise<{ report: Discovery; handles: DiscoveryHandles }> {
  const prefix = config.volumePrefix;
  const problems: Problem[] = [];
  const [version, volList, ctrList] = await Promise.all([
    docker.version(),
    docker.listVolumes(),
    docker.listContainers({ all: true }),
  ]);
  const { containers, handles } = await inspectContainers(docker, ctrList, prefix, problems);
  const { volumes, created } = classifyVolumes(volList.Volumes ?? [], containers, handles, config);
  problems.push(...missingVolumes(volumes, config.expectedVolumes));
  const databases = await probeDatabases(containers, volumes, handles, problems);
  const writers = containers.filter((c) => c.writer && !c.excluded);
  problems.push(...writerProblems(writers));
  return {
    report: {
      prefix,
      docker: { endpoint, serverVersion: version.Version },
      volumes, containers, databases, stopOrder: stopOrderOf(writers), stopWaves: stopWavesOf(writers), leftovers: leftoversOf(volumes, created), problems,
    },
    handles: { containers: handles },
  };
}

/** The stack's containers, inspected one by one (engine, compose service and dependencies, volume mounts), by name. */
async function inspectContainers(docker: Docker, ctrList: Docker.ContainerInfo[], prefix: string, problems: Problem[]): Promise<{ containers: ContainerInfo[]; handles: Map<string, DbTarget> }> {
  const handles = new Map<string, DbTarget>();
  const containers: ContainerInfo[] = [];
  const byService = new Map<string, string>(); // "project/service" -> container name
  const rawDeps = new Map<string, { project: string; services: string[] }>();
  for (const c of ctrList) {
    const name = (c.Names[0] ?? '').replace(/^\//, '');
    if (!name.startsWith(prefix)) continue;
    const container = docker.getContainer(c.Id);
    const ins = await container.inspect();
    const labels = ins.Config.Labels ?? {};
    const env = envMap(ins.Config.Env);
    const running = ins.State.Running === true;
    const { engine, engineSource } = await detectEngine(name, container, ins, problems);
    const project = labels['com.docker.compose.project'] ?? '';
    const service = labels['com.docker.compose.service'] ?? null;
    if (service) byService.set(`${project}/${service}`, name);
    const deps = (labels['com.docker.compose.depends_on'] ?? '').split(',').map((d) => d.split(':')[0]!).filter(Boolean);
    rawDeps.set(name, { project, services: deps });
    const info: ContainerInfo = {
      name,
      id: ins.Id,
      image: ins.Config.Image,
      imageId: ins.Image,
      state: ins.State.Status,
      health: ins.State.Health?.Status ?? null,
      running,
      excluded: isTrue(labels[LABEL_EXCLUDE]),
      writer: isTrue(labels[LABEL_STOP]),
      engine,
      engineSource,
      composeService: service,
      dependsOn: [],
      mounts: (ins.Mounts ?? []).filter((m) => m.Type === 'volume' && m.Name).map((m) => ({ volume: m.Name!, path: m.Destination, readOnly: m.RW === false })),
    };
    containers.push(info);
    handles.set(name, { name, container, env, cmd: ins.Config.Cmd ?? [] });
  }
  for (const c of containers) {
    const d = rawDeps.get(c.name)!;
    c.dependsOn = d.services.map((s) => byService.get(`${d.project}/${s}`)).filter((n): n is string => !!n).sort();
  }
  containers.sort((a, b) => a.name.localeCompare(b.name));
  return { containers, handles };
}

/** A container's database engine: from its dr.dump label, else its image, else (running) its processes; null if none. */
async function detectEngine(name: string, container: Docker.Container, ins: Docker.ContainerInspectInfo, problems: Problem[]): Promise<Pick<ContainerInfo, 'engine' | 'engineSource'>> {
  const labelled = (ins.Config.Labels ?? {})[LABEL_DUMP];
  if (labelled) {
    if ((ENGINE_KINDS as readonly string[]).includes(labelled)) return { engine: labelled as EngineKind, engineSource: 'label' };
    if (!['none', 'false'].includes(labelled)) {
      problems.push({ subject: name, message: `label ${LABEL_DUMP}=${labelled} is not one of ${ENGINE_KINDS.join(', ')}, none`,
        hint: `fix the label on ${name} in docker-compose.yml` });
    }
    return { engine: null, engineSource: null };
  }
  const engine = engineFromImage(ins.Config.Image) ?? null;
  if (engine) return { engine, engineSource: 'image' };
  if (ins.State.Running === true) {
    try {
      const top = await container.top({ ps_args: '-eo args' });
      const idx = Math.max(0, top.Titles.length - 1);
      const seen = engineFromProcesses((top.Processes as string[][]).map((p) => p[idx] ?? '')) ?? null;
      if (seen) return { engine: seen, engineSource: 'process' };
    } catch { /* not fatal: stays unknown */ }
  }
  return { engine: null, engineSource: null };
}

/**
 * The prefixed volumes by name, each with who mounts it, its role (a database's data where a mount meets the
 * engine's data path) and whether it is a copy left out; `created`: their creation times, for the leftovers.
 */
function classifyVolumes(volList: Docker.VolumeInspectInfo[], containers: ContainerInfo[], handles: ReadonlyMap<string, DbTarget>, config: DiscoverConfig): { volumes: VolumeInfo[]; created: Map<string, string> } {
  const dbDataPaths = new Map<string, string>(); // container -> data path
  for (const c of containers) if (c.engine) dbDataPaths.set(c.name, ENGINES[c.engine].dataPath(handles.get(c.name)!.env));
  const created = new Map<string, string>();
  const volumes: VolumeInfo[] = volList
    .filter((v) => v.Name.startsWith(config.volumePrefix))
    .map((v) => {
      const mountedBy = containers.flatMap((c) => c.mounts.filter((m) => m.volume === v.Name).map((m) => ({ container: c.name, path: m.path, readOnly: m.readOnly })));
      const isDb = mountedBy.some((m) => {
        const p = dbDataPaths.get(m.container);
        return p !== undefined && (p === m.path || p.startsWith(m.path + '/') || m.path.startsWith(p + '/'));
      });
      const labels = (v.Labels ?? {}) as Record<string, string>;
      const copy = classifyCopy(v.Name, labels, mountedBy.map((m) => m.container).filter((n) => !containers.find((c) => c.name === n)?.excluded), config);
      const createdAt = (v as { CreatedAt?: string }).CreatedAt;
      if (createdAt) created.set(v.Name, createdAt);
      return {
        name: v.Name,
        expected: config.expectedVolumes.includes(v.Name),
        excluded: isTrue(labels[LABEL_EXCLUDE]) || (copy !== null && copy.includedBecause === null),
        role: isDb ? 'database' : mountedBy.length ? 'app' : 'unused',
        mountedBy,
        driver: v.Driver,
        labels,
        copy,
      } satisfies VolumeInfo;
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  return { volumes, created };
}

function missingVolumes(volumes: readonly VolumeInfo[], expected: readonly string[]): Problem[] {
  return expected.filter((name) => !volumes.some((v) => v.name === name)).map((name) => ({
    subject: name, message: `expected volume ${name} is missing`,
    hint: 'bring the stack up (docker compose up -d), restore it (dr restore), or list the volumes you have in DR_EXPECTED_VOLUMES',
  }));
}

/** Each database container of the stack with its data volumes, probed through its engine when it runs. */
async function probeDatabases(containers: readonly ContainerInfo[], volumes: readonly VolumeInfo[], handles: ReadonlyMap<string, DbTarget>, problems: Problem[]): Promise<DatabaseInfo[]> {
  const databases: DatabaseInfo[] = [];
  for (const c of containers.filter((x) => x.engine && !x.excluded)) {
    const engine = c.engine!;
    const db: DatabaseInfo = {
      container: c.name, engine, image: c.image, running: c.running, version: null, serverVersion: null, databases: [],
      dataVolumes: volumes.filter((v) => v.role === 'database' && v.mountedBy.some((m) => m.container === c.name)).map((v) => v.name),
      error: null,
    };
    if (!c.running) {
      db.error = `${c.name} is not running (state: ${c.state})`;
      problems.push({ subject: c.name, message: `database container ${db.error}`, hint: `start it: docker start ${c.name}` });
    } else {
      try {
        const p = await ENGINES[engine].probe(handles.get(c.name)!);
        Object.assign(db, { version: p.version, serverVersion: p.serverVersion, databases: p.databases }, p.keys ? { keys: p.keys } : {});
      } catch (err) {
        db.error = scrub(errorMessage(err));
        problems.push({ subject: c.name, message: `database unreachable: ${db.error}`, hint: err instanceof DrError ? err.hint : undefined });
      }
    }
    databases.push(db);
  }
  return databases;
}

/** Writers that are databases: they are dumped live, so stopping them is a mistake in the labels. */
function writerProblems(writers: readonly ContainerInfo[]): Problem[] {
  return writers.filter((w) => w.engine).map((w) => ({
    subject: w.name, message: `${w.name} is labelled ${LABEL_STOP}=true but is a ${w.engine} database`,
    hint: 'databases are dumped live; remove the label (use --mode cold to stop databases too)',
  }));
}

/**
 * Containers grouped into waves that can be stopped together: wave 0 holds what nothing else in the set
 * depends on, each later wave what only earlier waves depend on. Started again in reverse (dependencies
 * first). Within a wave the order is stopOrderOf's; a cycle falls back to one container per wave.
 */
export function stopWavesOf(items: readonly { name: string; dependsOn: readonly string[] }[]): string[][] {
  const order = stopOrderOf(items);
  const names = new Set(order);
  const deps = new Map(items.map((i) => [i.name, i.dependsOn.filter((d) => names.has(d) && d !== i.name)]));
  const left = new Set(order);
  const waves: string[][] = [];
  while (left.size) {
    const needed = new Set([...left].flatMap((n) => deps.get(n)!));
    let wave = order.filter((n) => left.has(n) && !needed.has(n));
    if (!wave.length) wave = [order.find((n) => left.has(n))!];
    for (const n of wave) left.delete(n);
    waves.push(wave);
  }
  return waves;
}

/**
 * Order in which to stop containers: a container is stopped before anything it depends on (the reverse of
 * compose's start order); ties by name. Dependencies outside the set are ignored; cycles fall back to names.
 */
export function stopOrderOf(items: readonly { name: string; dependsOn: readonly string[] }[]): string[] {
  const names = new Set(items.map((i) => i.name));
  const deps = new Map(items.map((i) => [i.name, i.dependsOn.filter((d) => names.has(d) && d !== i.name)]));
  const startOrder: string[] = [];
  const done = new Set<string>();
  const visiting = new Set<string>();
  const visit = (n: string) => {
    if (done.has(n) || visiting.has(n)) return;
    visiting.add(n);
    for (const d of [...deps.get(n)!].sort()) visit(d);
    visiting.delete(n);
    done.add(n);
    startOrder.push(n);
  };
  for (const n of [...names].sort()) visit(n);
  return startOrder.reverse();
}
