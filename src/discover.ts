/**
 * Discovery: what the stack is made of, found through the Docker API. Only containers and volumes whose
 * names start with DR_VOLUME_PREFIX are considered; labels refine it:
 *   dr.stop-during-backup=true  a writer, stopped while its volumes are archived
 *   dr.exclude=true             (container or volume) left out entirely
 *   dr.dump=mariadb|postgres|redis  the engine, where detection from the image or processes is not enough
 */
import type Docker from 'dockerode';
import { errorMessage, DrError } from './errors.ts';
import { envMap } from './docker.ts';
import { scrub } from './redact.ts';
import { ENGINES, engineFromImage, engineFromProcesses, type EngineKind } from './engines/index.ts';
import { ENGINE_KINDS, type DbTarget } from './engines/types.ts';
import type { Config } from './config.ts';

export const LABEL_STOP = 'dr.stop-during-backup';
export const LABEL_EXCLUDE = 'dr.exclude';
export const LABEL_DUMP = 'dr.dump';

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

export interface DatabaseInfo {
  container: string;
  engine: EngineKind;
  image: string;
  running: boolean;
  version: string | null;
  serverVersion: string | null;
  databases: string[];
  keys?: Record<string, number>;
  dataVolumes: string[];
  error: string | null;
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
  problems: Problem[];
}

/** Internal handles for later stages (never serialised: the env may hold secrets). */
export interface DiscoveryHandles {
  containers: Map<string, DbTarget>;
}

const isTrue = (v: string | undefined) => v !== undefined && ['true', '1', 'yes', 'on'].includes(v.toLowerCase());

export async function discover(docker: Docker, config: Pick<Config, 'volumePrefix' | 'expectedVolumes'>, endpoint: string): Promise<{ report: Discovery; handles: DiscoveryHandles }> {
  const prefix = config.volumePrefix;
  const problems: Problem[] = [];
  const [version, volList, ctrList] = await Promise.all([
    docker.version(),
    docker.listVolumes(),
    docker.listContainers({ all: true }),
  ]);

  // --- containers ---------------------------------------------------------------------------------
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
    let engine: EngineKind | null = null;
    let engineSource: ContainerInfo['engineSource'] = null;
    const labelled = labels[LABEL_DUMP];
    if (labelled) {
      if ((ENGINE_KINDS as readonly string[]).includes(labelled)) { engine = labelled as EngineKind; engineSource = 'label'; }
      else if (!['none', 'false'].includes(labelled)) {
        problems.push({ subject: name, message: `label ${LABEL_DUMP}=${labelled} is not one of ${ENGINE_KINDS.join(', ')}, none`,
          hint: `fix the label on ${name} in docker-compose.yml` });
      }
    } else {
      engine = engineFromImage(ins.Config.Image) ?? null;
      if (engine) engineSource = 'image';
      else if (running) {
        try {
          const top = await container.top({ ps_args: '-eo args' });
          const idx = Math.max(0, top.Titles.length - 1);
          engine = engineFromProcesses((top.Processes as string[][]).map((p) => p[idx] ?? '')) ?? null;
          if (engine) engineSource = 'process';
        } catch { /* not fatal: stays unknown */ }
      }
    }
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

  // --- volumes ---------------------------------------------------------------------------------------
  const dbDataPaths = new Map<string, string>(); // container -> data path
  for (const c of containers) if (c.engine) dbDataPaths.set(c.name, ENGINES[c.engine].dataPath(handles.get(c.name)!.env));
  const volumes: VolumeInfo[] = (volList.Volumes ?? [])
    .filter((v) => v.Name.startsWith(prefix))
    .map((v) => {
      const mountedBy = containers.flatMap((c) => c.mounts.filter((m) => m.volume === v.Name).map((m) => ({ container: c.name, path: m.path, readOnly: m.readOnly })));
      const isDb = mountedBy.some((m) => {
        const p = dbDataPaths.get(m.container);
        return p !== undefined && (p === m.path || p.startsWith(m.path + '/') || m.path.startsWith(p + '/'));
      });
      const labels = (v.Labels ?? {}) as Record<string, string>;
      return {
        name: v.Name,
        expected: config.expectedVolumes.includes(v.Name),
        excluded: isTrue(labels[LABEL_EXCLUDE]),
        role: isDb ? 'database' : mountedBy.length ? 'app' : 'unused',
        mountedBy,
        driver: v.Driver,
        labels,
      } satisfies VolumeInfo;
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  for (const name of config.expectedVolumes) {
    if (!volumes.some((v) => v.name === name)) {
      problems.push({ subject: name, message: `expected volume ${name} is missing`,
        hint: 'bring the stack up (docker compose up -d), restore it (dr restore), or list the volumes you have in DR_EXPECTED_VOLUMES' });
    }
  }

  // --- databases -------------------------------------------------------------------------------------
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

  // --- writers --------------------------------------------------------------------------------------
  const writers = containers.filter((c) => c.writer && !c.excluded);
  const stopOrder = stopOrderOf(writers.map((w) => ({ name: w.name, dependsOn: w.dependsOn })));
  const stopWaves = stopWavesOf(writers.map((w) => ({ name: w.name, dependsOn: w.dependsOn })));
  for (const w of writers) {
    if (w.engine) {
      problems.push({ subject: w.name, message: `${w.name} is labelled ${LABEL_STOP}=true but is a ${w.engine} database`,
        hint: 'databases are dumped live; remove the label (use --mode cold to stop databases too)' });
    }
  }

  return {
    report: {
      prefix,
      docker: { endpoint, serverVersion: version.Version },
      volumes, containers, databases, stopOrder, stopWaves, problems,
    },
    handles: { containers: handles },
  };
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
