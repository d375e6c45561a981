/**
 * One Compose file (interpolated, schema-valid, only honoured keys) to berth's partial model:
 * every list and map in its canonical form, each entry with the place it was written, ready to
 * be merged with the stack's other files.
 */
import { posix } from 'node:path';
import { isIP } from 'node:net';
import type { DependsOn, HealthcheckSpec, IpamSpec, MountSpec, PortSpec, PullPolicy, SourceError } from '../model.ts';
import { buildPart, pullPolicy, type BuildPart } from './build.ts';
import { deployPart, type DeployPart } from './deploy.ts';
import { fileDefs, fileRefs, type FileDefPart, type FileRefPart } from './files.ts';
import { jobPart, type JobPart } from './job.ts';
import { includeRefs, type IncludeRef } from './include.ts';
import { passPart, type PassPart } from './passthrough.ts';
import { errorAt, siteOf, type At, type Path, type Site, type YamlSource } from './positions.ts';
import { badDuration, normalPath, obj, parseCidr, parseDuration, repoPath, scalarText, shellSplit, toBool, toInt, type Obj } from './values.ts';

/** One file's view of one service. Absent fields were not set in this file. */
export interface ServicePart {
  name: string;
  /** the service's key in the file */
  at: Site;
  image?: At<string>;
  command?: string[];
  entrypoint?: string[];
  environment: Map<string, string>;
  /** snapshot-relative paths */
  envFiles: At<{ path: string; required: boolean }>[];
  ports: At<PortSpec>[];
  volumes: At<MountSpec>[];
  /** network key -> how the service joins it; undefined when the file does not list networks */
  networks?: Map<string, At<NetworkJoin>>;
  labels: Map<string, string>;
  healthcheck?: Partial<HealthcheckSpec>;
  restart?: string;
  restartAt?: Site;
  user?: string;
  workingDir?: string;
  stopGracePeriodSeconds?: number;
  stopSignal?: string;
  deploy: DeployPart;
  dependsOn: Map<string, At<DependsOn['condition']>>;
  containerName?: At<string>;
  build?: BuildPart;
  pullPolicy?: At<PullPolicy>;
  secrets: At<FileRefPart>[];
  configs: At<FileRefPart>[];
  /** `x-berth:` (render/job.ts) */
  job: JobPart;
  /** the long tail passed through to Docker (passthrough.ts) */
  pass: PassPart;
  /** `extends:`, its file a snapshot path (this file's when not given); gone once resolved (extends.ts) */
  extends?: At<{ file: string; service: string }>;
}

/** How a service joins one network: the names it answers to there, and its fixed addresses (each with where it is written). */
export interface NetworkJoin {
  aliases: string[];
  ipv4Address?: At<string>;
  ipv6Address?: At<string>;
  linkLocalIps?: string[];
}

/** A top-level network or volume as one file declares it. */
export interface ResourcePart {
  key: string;
  at: Site;
  name?: string;
  external?: boolean;
  driver?: string;
  labels: Map<string, string>;
  /** networks only: `ipam:`, each pool with where it is written */
  ipam?: { driver?: string; config: At<IpamSpec['config'][number]>[]; options?: Record<string, string> };
  /** networks only */
  enableIpv6?: boolean;
}

/** What one Compose file (or, after merging, a stack's files) declares. */
export interface ComposeModel {
  services: Map<string, ServicePart>;
  networks: Map<string, ResourcePart>;
  volumes: Map<string, ResourcePart>;
  secrets: Map<string, FileDefPart>;
  configs: Map<string, FileDefPart>;
  /** the file's top-level `include:` entries, not yet read (include.ts) */
  includes?: At<IncludeRef>[];
}

const PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;
const RESTART = /^(no|always|unless-stopped|on-failure(:\d+)?)$/;
const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const PORT_RANGE = /^(\d+)(?:-(\d+))?$/;

const entries = (v: unknown): [string, unknown][] => Object.entries(obj(v));

/**
 * Converts a validated Compose file into its partial model, with located errors for bad values.
 * `stack` is the stack's name a top-level `name:` must equal; undefined for a file read by
 * `include:` or `extends:`, whose name does not matter.
 */
export function normalizeFile(src: YamlSource, data: unknown, stack: string | undefined): { model: ComposeModel; errors: SourceError[] } {
  const errors: SourceError[] = [];
  const fail = (path: Path, message: string, key = false) => void errors.push(errorAt(src, path, message, { key }));
  const top = obj(data);
  // an empty name (a variable unset) counts as none, as in Compose
  if (stack !== undefined && top.name !== undefined && top.name !== '' && top.name !== stack) {
    fail(['name'], `the project name '${scalarText(top.name)}' must be the stack's name '${stack}' (or leave name: out)`);
  }
  const model: ComposeModel = {
    services: new Map(),
    networks: new Map(),
    volumes: new Map(),
    secrets: fileDefs(src, top.secrets, 'secret', fail),
    configs: fileDefs(src, top.configs, 'config', fail),
  };
  if (top.include !== undefined) model.includes = includeRefs(src, top.include, fail);
  for (const [name, body] of entries(top.services)) model.services.set(name, service(src, name, obj(body), fail));
  for (const kind of ['networks', 'volumes'] as const) {
    for (const [key, body] of entries(top[kind])) model[kind].set(key, resource(src, [kind, key], obj(body), fail));
  }
  return { model, errors };
}

type Fail = (path: Path, message: string, key?: boolean) => void;

function service(src: YamlSource, name: string, s: Obj, fail: Fail): ServicePart {
  const base: Path = ['services', name];
  const p = (...rest: (string | number)[]): Path => [...base, ...rest];
  const part: ServicePart = {
    name,
    at: siteOf(src, base, { key: true }),
    environment: new Map(),
    envFiles: [],
    ports: [],
    volumes: [],
    labels: new Map(),
    deploy: deployPart(src, obj(s.deploy), p('deploy'), fail),
    dependsOn: new Map(),
    build: buildPart(src, s.build, p('build'), fail),
    secrets: fileRefs(src, s.secrets, p('secrets'), fail),
    configs: fileRefs(src, s.configs, p('configs'), fail),
    job: jobPart(src, s['x-berth'], p('x-berth'), fail),
    pass: passPart(src, s, base, fail),
  };
  if (typeof s.container_name === 'string') part.containerName = { value: s.container_name, at: siteOf(src, p('container_name')) };
  const policy = pullPolicy(s.pull_policy, p('pull_policy'), fail);
  if (policy) part.pullPolicy = { value: policy, at: siteOf(src, p('pull_policy')) };
  if (s.extends !== undefined) {
    const e = typeof s.extends === 'string' ? { service: s.extends } : obj(s.extends);
    const file = typeof e.file === 'string' ? repoPath(src.file, e.file) : src.file;
    if (file === undefined) fail(p('extends', 'file'), `'${String(e.file)}' must be a path inside the repository, relative to the compose file`);
    else part.extends = { value: { file, service: String(e.service) }, at: siteOf(src, p('extends')) };
  }
  if (typeof s.image === 'string') {
    if (s.image.trim() === '') fail(p('image'), 'is empty (is a variable unset?)');
    else part.image = { value: s.image, at: siteOf(src, p('image')) };
  }
  for (const key of ['command', 'entrypoint'] as const) {
    const v = s[key];
    if (typeof v === 'string') {
      const words = shellSplit(v);
      if (words) part[key] = words;
      else fail(p(key), 'a quote is never closed');
    } else if (Array.isArray(v)) {
      part[key] = v.map(String);
    }
  }
  // a bare `KEY` would take its value from the process environment in Compose; berth never reads
  // that (a commit renders the same everywhere), so such an entry sets nothing
  for (const [k, v] of listOrDict(s.environment)) if (v !== null) part.environment.set(k, scalarText(v));
  for (const [k, v] of ownLabels(s.labels, p('labels'), fail)) part.labels.set(k, scalarText(v));
  envFiles(src, s.env_file, p('env_file'), part, fail);
  (Array.isArray(s.ports) ? s.ports : []).forEach((item, i) => {
    const specs = port(item);
    if (typeof specs === 'string') fail(p('ports', i), specs);
    else for (const value of specs) part.ports.push({ value, at: siteOf(src, p('ports', i)) });
  });
  (Array.isArray(s.volumes) ? s.volumes : []).forEach((item, i) => {
    const dir = posix.dirname(src.file);
    const mount = typeof item === 'string' ? shortVolume(item, dir) : longVolume(obj(item), dir);
    if (typeof mount === 'string') fail(p('volumes', i), mount);
    else part.volumes.push({ value: mount, at: siteOf(src, p('volumes', i)) });
  });
  if (Array.isArray(s.networks)) {
    part.networks = new Map(s.networks.map((key: string, i) => [key, { value: { aliases: [] }, at: siteOf(src, p('networks', i)) }]));
  } else if (s.networks !== undefined) {
    part.networks = new Map(
      entries(s.networks).map(([key, v]) => [
        key,
        { value: networkJoin(src, obj(v), p('networks', key), fail), at: siteOf(src, p('networks', key), { key: true }) },
      ]),
    );
  }
  if (s.healthcheck !== undefined) part.healthcheck = healthcheck(obj(s.healthcheck), p('healthcheck'), fail);
  if (s.restart !== undefined) {
    if (RESTART.test(String(s.restart))) {
      part.restart = String(s.restart);
      part.restartAt = siteOf(src, p('restart'));
    } else fail(p('restart'), `'${String(s.restart)}' is not a restart policy (no, always, on-failure[:N], unless-stopped)`);
  }
  if (typeof s.user === 'string') part.user = s.user;
  if (typeof s.working_dir === 'string') part.workingDir = s.working_dir;
  if (typeof s.stop_signal === 'string') part.stopSignal = s.stop_signal;
  if (s.stop_grace_period !== undefined) {
    const ns = parseDuration(String(s.stop_grace_period));
    if (ns === undefined) fail(p('stop_grace_period'), badDuration(s.stop_grace_period));
    else part.stopGracePeriodSeconds = Math.trunc(ns / 1e9);
  }
  if (Array.isArray(s.depends_on)) {
    s.depends_on.forEach((dep: string, i) => part.dependsOn.set(dep, { value: 'service_started', at: siteOf(src, p('depends_on', i)) }));
  } else {
    for (const [dep, v] of entries(s.depends_on)) {
      const condition = obj(v).condition as DependsOn['condition'];
      part.dependsOn.set(dep, { value: condition, at: siteOf(src, p('depends_on', dep), { key: true }) });
    }
  }
  return part;
}

/** `environment` / `labels` as [key, value] pairs: a list of "K=V" ("K" alone gives null) or a map. */
function listOrDict(v: unknown): [string, unknown][] {
  if (!Array.isArray(v)) return entries(v);
  return v.map((item: string) => {
    const eq = item.indexOf('=');
    return eq < 0 ? [item, null] : [item.slice(0, eq), item.slice(eq + 1)];
  });
}

/**
 * `labels:` less those under `berth.`, which are berth's own (the owner, the spec's hash, the files,
 * the reservations it reads back from what runs): one a repo wrote would be believed, so each is
 * refused where it is written.
 */
function ownLabels(v: unknown, path: Path, fail: Fail): [string, unknown][] {
  const pairs = listOrDict(v);
  return pairs.filter(([k], i) => {
    if (!k.startsWith('berth.')) return true;
    fail(
      Array.isArray(v) ? [...path, i] : [...path, k],
      `the label ${k} is reserved: berth sets the labels under berth. itself (docs/how-it-works.md, "On the hosts")`,
      !Array.isArray(v),
    );
    return false;
  });
}

function envFiles(src: YamlSource, v: unknown, path: Path, part: ServicePart, fail: Fail): void {
  if (v === undefined) return;
  const items = Array.isArray(v) ? v : [v];
  const dir = posix.dirname(src.file);
  items.forEach((item: unknown, i) => {
    const at = Array.isArray(v) ? [...path, i] : path;
    const given = typeof item === 'string' ? item : String(obj(item).path);
    const required = typeof item === 'string' ? true : toBool(obj(item).required ?? true);
    const resolved = posix.normalize(posix.join(dir, given));
    if (given.startsWith('/')) fail(at, `'${given}' must be a path relative to the compose file (berth reads it from the repository)`);
    else if (resolved === '..' || resolved.startsWith('../')) fail(at, `'${given}' points outside the repository`);
    else if (required === undefined) fail([...at, 'required'], 'must be true or false');
    else part.envFiles.push({ value: { path: resolved, required }, at: siteOf(src, at) });
  });
}

function healthcheck(h: Obj, path: Path, fail: Fail): Partial<HealthcheckSpec> {
  const out: Partial<HealthcheckSpec> = {};
  if (typeof h.test === 'string') out.test = ['CMD-SHELL', h.test];
  else if (Array.isArray(h.test)) {
    if (['CMD', 'CMD-SHELL', 'NONE'].includes(h.test[0])) out.test = h.test.map(String);
    else fail([...path, 'test'], 'a list must start with CMD, CMD-SHELL or NONE');
  }
  const durations = [
    ['interval', 'intervalNs'],
    ['timeout', 'timeoutNs'],
    ['start_period', 'startPeriodNs'],
    ['start_interval', 'startIntervalNs'],
  ] as const;
  for (const [key, field] of durations) {
    if (h[key] === undefined) continue;
    const ns = parseDuration(String(h[key]));
    if (ns === undefined) fail([...path, key], badDuration(h[key]));
    else out[field] = ns;
  }
  if (h.retries !== undefined) {
    const n = toInt(h.retries);
    if (n === undefined || n < 0) fail([...path, 'retries'], `'${scalarText(h.retries)}' is not a number of retries`);
    else out.retries = n;
  }
  if (h.disable !== undefined) {
    const off = toBool(h.disable);
    if (off === undefined) fail([...path, 'disable'], 'must be true or false');
    else if (off && h.test !== undefined) fail([...path, 'disable'], 'cannot be set together with test');
    else if (off) out.test = ['NONE'];
  }
  return out;
}

/** A service's entry under `networks:` in the long syntax: aliases, and fixed addresses checked for their form. */
function networkJoin(src: YamlSource, v: Obj, path: Path, fail: Fail): NetworkJoin {
  const join: NetworkJoin = { aliases: (v.aliases as string[] | undefined) ?? [] };
  for (const [key, field, family] of [
    ['ipv4_address', 'ipv4Address', 4],
    ['ipv6_address', 'ipv6Address', 6],
  ] as const) {
    if (v[key] === undefined) continue;
    const text = scalarText(v[key]);
    if (isIP(text) !== family) fail([...path, key], `'${text}' is not an IPv${family} address`);
    else join[field] = { value: text, at: siteOf(src, [...path, key], { key: true }) };
  }
  if (Array.isArray(v.link_local_ips)) {
    const ips = v.link_local_ips.map(scalarText);
    ips.forEach((ip, i) => {
      if (!isIP(ip)) fail([...path, 'link_local_ips', i], `'${ip}' is not an IP address`);
    });
    join.linkLocalIps = ips;
  }
  return join;
}

/** `ipam:` of a top-level network: each pool's subnet and range as CIDR, gateway and auxiliary addresses as IPs. */
function ipam(src: YamlSource, v: Obj, path: Path, fail: Fail): NonNullable<ResourcePart['ipam']> {
  const out: NonNullable<ResourcePart['ipam']> = { config: [] };
  if (typeof v.driver === 'string') out.driver = v.driver;
  if (v.options !== undefined) out.options = sortedText(obj(v.options));
  (Array.isArray(v.config) ? v.config : []).forEach((item, i) => {
    const c = obj(item);
    const at = [...path, 'config', i];
    const pool: IpamSpec['config'][number] = {};
    for (const [key, field] of [
      ['subnet', 'subnet'],
      ['ip_range', 'ipRange'],
    ] as const) {
      if (c[key] === undefined) continue;
      const text = scalarText(c[key]);
      if (!parseCidr(text)) fail([...at, key], `'${text}' is not a subnet in CIDR form (like 10.5.0.0/16 or fd00:5::/64)`);
      else pool[field] = text;
    }
    if (c.gateway !== undefined) {
      const text = scalarText(c.gateway);
      if (!isIP(text)) fail([...at, 'gateway'], `'${text}' is not an IP address`);
      else pool.gateway = text;
    }
    if (c.aux_addresses !== undefined) {
      const aux = sortedText(obj(c.aux_addresses));
      for (const [name, ip] of Object.entries(aux)) if (!isIP(ip)) fail([...at, 'aux_addresses', name], `'${ip}' is not an IP address`);
      pool.auxAddresses = aux;
    }
    out.config.push({ value: pool, at: siteOf(src, at) });
  });
  return out;
}

/** A mapping's values as text, its keys sorted (so that the same settings written in another order are the same). */
function sortedText(o: Obj): Record<string, string> {
  return Object.fromEntries(
    Object.entries(o)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => [k, scalarText(v)]),
  );
}

function resource(src: YamlSource, path: Path, r: Obj, fail: Fail): ResourcePart {
  const part: ResourcePart = { key: String(path[1]), at: siteOf(src, path, { key: true }), labels: new Map() };
  if (r.external !== undefined) {
    const external = typeof r.external === 'object' ? true : toBool(r.external);
    if (external === undefined) fail([...path, 'external'], 'must be true or false');
    else part.external = external;
  }
  if (typeof r.name === 'string') part.name = r.name;
  if (typeof r.driver === 'string') part.driver = r.driver;
  for (const [k, v] of ownLabels(r.labels, [...path, 'labels'], fail)) part.labels.set(k, scalarText(v));
  if (r.ipam !== undefined) part.ipam = ipam(src, obj(r.ipam), [...path, 'ipam'], fail);
  if (r.enable_ipv6 !== undefined) {
    const on = toBool(r.enable_ipv6);
    if (on === undefined) fail([...path, 'enable_ipv6'], 'must be true or false');
    else part.enableIpv6 = on;
  }
  return part;
}

/** A `ports:` entry (number, short string or long mapping) as port specs; a message if malformed. */
export function port(item: unknown): PortSpec[] | string {
  if (typeof item === 'number') return portRange(String(item)) ? [{ target: item, protocol: 'tcp' }] : `${item} is not a port number`;
  if (typeof item === 'string') return shortPort(item);
  const p = obj(item);
  const target = toInt(p.target);
  if (target === undefined || !portRange(String(target))) return 'target must be a port number';
  const protocol = scalarText(p.protocol ?? 'tcp');
  if (!isProtocol(protocol)) return `protocol must be tcp, udp or sctp, not '${protocol}'`;
  if (p.mode !== undefined && p.mode !== 'host') {
    return `mode '${scalarText(p.mode)}' is not supported by berth yet (ports are published on the host that runs each container)`;
  }
  const spec: PortSpec = { target, protocol };
  if (p.published !== undefined && p.published !== '') {
    const published = portRange(scalarText(p.published));
    if (!published) return `published must be a port number or range, not '${scalarText(p.published)}'`;
    spec.published = rangeText(published);
  }
  if (typeof p.host_ip === 'string' && p.host_ip !== '') spec.hostIp = p.host_ip;
  return [spec];
}

function isProtocol(s: string): s is PortSpec['protocol'] {
  return (PROTOCOLS as readonly string[]).includes(s);
}

function portRange(text: string): [number, number] | undefined {
  const m = PORT_RANGE.exec(text);
  if (!m) return undefined;
  const lo = Number(m[1]);
  const hi = Number(m[2] ?? m[1]);
  return lo >= 1 && hi <= 65535 && lo <= hi ? [lo, hi] : undefined;
}

const rangeText = ([lo, hi]: [number, number]) => (lo === hi ? String(lo) : `${lo}-${hi}`);

/** "[HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]", ports or ranges; IPv6 host addresses in brackets. */
function shortPort(text: string): PortSpec[] | string {
  const bad = `'${text}' is not a port mapping ([HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL])`;
  const [mapping, protocol = 'tcp', ...extra] = text.split('/');
  if (extra.length > 0 || !isProtocol(protocol)) return bad;
  let rest = mapping;
  let hostIp: string | undefined;
  if (rest.startsWith('[')) {
    const end = rest.indexOf(']:');
    if (end < 0) return bad;
    hostIp = rest.slice(1, end);
    rest = rest.slice(end + 2);
  }
  const parts = rest.split(':');
  if (hostIp === undefined && parts.length > 2) hostIp = parts.splice(0, parts.length - 2).join(':');
  if (parts.length > 2 || hostIp === '') return bad;
  const target = portRange(parts[parts.length - 1]);
  const published = parts.length === 2 && parts[0] !== '' ? portRange(parts[0]) : undefined;
  if (!target || (parts.length === 2 && parts[0] !== '' && !published)) return bad;
  const count = target[1] - target[0] + 1;
  if (count > 1 && published && published[1] - published[0] + 1 !== count) {
    return `'${text}': the host and container port ranges must be the same length`;
  }
  const specs: PortSpec[] = [];
  for (let i = 0; i < count; i++) {
    const spec: PortSpec = { target: target[0] + i, protocol };
    if (published) spec.published = count > 1 ? String(published[0] + i) : rangeText(published);
    if (hostIp !== undefined) spec.hostIp = hostIp;
    specs.push(spec);
  }
  return specs;
}

const homeBind = (source: string) =>
  `'${source}' is a path in someone's home folder, which remote hosts do not share: ` +
  'use a path relative to the compose file (a file or folder of the repository, copied into the container), an absolute host path, or a named volume';

function checkTarget(target: string): string | undefined {
  return target.startsWith('/') ? undefined : `the mount target '${target}' must be an absolute path in the container`;
}

/**
 * Where a volume's source points: an absolute bind, a path of the repository (relative to the
 * compose file in `dir`), a named volume, or a message why none.
 */
function classifySource(source: string, dir: string): Pick<MountSpec, 'type' | 'source' | 'repoPath'> | string {
  if (source.startsWith('/')) return { type: 'bind', source };
  if (source.startsWith('~')) return homeBind(source);
  if (source.startsWith('.')) {
    const repoPath = normalPath(posix.join(dir, source));
    if (repoPath === '..' || repoPath.startsWith('../')) return `'${source}' points outside the repository`;
    return { type: 'bind', source, repoPath };
  }
  if (VOLUME_NAME.test(source)) return { type: 'volume', source };
  return `'${source}' is neither an absolute host path nor a volume name`;
}

/** "[SOURCE:]TARGET[:ro|rw]". */
function shortVolume(text: string, dir: string): MountSpec | string {
  const parts = text.split(':');
  if (parts.length > 3) return `'${text}' is not a volume (SOURCE:TARGET[:ro])`;
  if (parts.length === 1) return checkTarget(text) ?? { type: 'volume', target: text, readOnly: false };
  const [source, target, mode = ''] = parts;
  const options = mode === '' ? [] : mode.split(',');
  const unknown = options.find((o) => o !== 'ro' && o !== 'rw');
  if (unknown !== undefined) return `mount option '${unknown}' is not supported by berth yet (only ro, rw)`;
  const kind = classifySource(source, dir);
  if (typeof kind === 'string') return kind;
  return checkTarget(target) ?? { ...kind, target, readOnly: options.includes('ro') };
}

function longVolume(v: Obj, dir: string): MountSpec | string {
  const type = scalarText(v.type);
  if (type !== 'bind' && type !== 'volume' && type !== 'tmpfs') return `type '${type}' is not supported by berth yet (bind, volume, tmpfs)`;
  if (typeof v.target !== 'string') return "missing required key 'target'";
  const bad = checkTarget(v.target);
  if (bad) return bad;
  const readOnly = toBool(v.read_only ?? false);
  if (readOnly === undefined) return 'read_only must be true or false';
  const mount: MountSpec = { type, target: v.target, readOnly };
  const source = typeof v.source === 'string' && v.source !== '' ? v.source : undefined;
  if (type === 'tmpfs') return source === undefined ? mount : 'a tmpfs mount has no source';
  if (source === undefined) return type === 'bind' ? 'a bind mount needs a source (an absolute host path)' : mount;
  const kind = classifySource(source, dir);
  if (typeof kind === 'string') return kind;
  if (kind.type !== type) {
    return type === 'bind' ? `a bind mount needs an absolute host path or a path of the repository, not '${source}'` : `'${source}' is not a volume name`;
  }
  return { ...mount, ...kind };
}
