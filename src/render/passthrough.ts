/**
 * The Compose long tail: service keys that berth passes through to Docker as Docker defines them
 * (cap_add, sysctls, ulimits, logging, tmpfs, extra_hosts, dns, devices, ...). Each key is read
 * from one file into a canonical form (every value checked, errors located), merged across a
 * stack's files with Compose's rules (single values: the later file wins; lists: appended without
 * duplicates; mappings: merged key by key), then turned into Docker create options.
 */
import type { DockerExtras, Resources, ServiceSpec, SourceError } from '../model.ts';
import type { DeployPart } from './deploy.ts';
import { siteError, siteOf, type At, type Path, type Site, type YamlSource } from './positions.ts';
import { obj, parseBytes, parseDuration, scalarText, toBool, toInt, toNumber } from './values.ts';

/**
 * One service's long-tail keys in one file (after merging, the stack's): each key's value in its
 * canonical form with where it was written; a list key holds one entry per item.
 */
export type PassPart = Map<string, PassEntry[]>;

/**
 * A key's value with where it was written; a mapping's (sysctls, annotations, logging, ...) also
 * where each of its keys was (a list item "KEY=VALUE" counts as the key KEY), so that the repo's
 * policy can point at the one it refuses, in whichever file it came from.
 */
export interface PassEntry extends At<unknown> {
  keys?: Record<string, Site>;
}

type Fail = (path: Path, message: string) => void;
/** A list item read from the file, with its path. */
type Item = [value: unknown, path: Path];
type Out = Pick<DockerExtras, 'config' | 'hostConfig' | 'platform'>;

interface Rule {
  /** replace: the later file's value wins; append: lists appended without duplicates; map: merged key by key; or a function */
  merge: 'replace' | 'append' | 'map' | ((base: unknown, over: unknown) => unknown);
  /** the canonical value (append: the items, each with its path); undefined when it is bad (reported through `fail`) */
  read: (v: unknown, path: Path, fail: Fail) => unknown;
  /** puts the (merged) value into Docker's create options; absent for keys berth reads itself */
  docker?: (v: unknown, out: Out) => void;
}

// ---- readers -------------------------------------------------------------------------------

const bool = (v: unknown, path: Path, fail: Fail) => {
  const b = toBool(v);
  if (b === undefined) fail(path, 'must be true or false');
  return b;
};

const int =
  (what: string, min: number, max = Infinity) =>
  (v: unknown, path: Path, fail: Fail) => {
    const n = toInt(v);
    if (n === undefined || n < min || n > max) return void fail(path, `'${scalarText(v)}' is not ${what}`);
    return n;
  };

const text = (pattern?: RegExp, what?: string) => (v: unknown, path: Path, fail: Fail) => {
  const s = scalarText(v);
  if (pattern && !pattern.test(s)) return void fail(path, `'${s}' is not ${what}`);
  return s;
};

const bytes = (what: string) => (v: unknown, path: Path, fail: Fail) => {
  const n = typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : parseBytes(scalarText(v));
  if (n === undefined) fail(path, `'${scalarText(v)}' is not ${what} (like 64m, 1g or 1073741824)`);
  return n;
};

/** Microseconds, given as an integer or as a duration ("400ms"). */
const micros = (min: number) => (v: unknown, path: Path, fail: Fail) => {
  const n = toInt(v);
  if (n !== undefined && n >= min) return n;
  const ns = typeof v === 'string' ? parseDuration(v) : undefined;
  if (ns === undefined) return void fail(path, `'${scalarText(v)}' is not a number of microseconds or a duration (like 400ms)`);
  return Math.round(ns / 1000);
};

/** A string or a list of strings, as items; `each` checks and canonicalises one. */
const items =
  (each: (s: string) => string | { error: string } = (s) => s) =>
  (v: unknown, path: Path, fail: Fail): Item[] => {
    const list: Item[] = Array.isArray(v) ? v.map((x, i) => [x, [...path, i]]) : [[v, path]];
    return list.flatMap(([x, at]) => {
      const r = each(scalarText(x));
      if (typeof r === 'string') return [[r, at] as Item];
      fail(at, r.error);
      return [];
    });
  };

/** A mapping or a list of "KEY=VALUE": string values. */
const dict = (what: string) => (v: unknown, path: Path, fail: Fail) => {
  const out: Record<string, string> = {};
  if (Array.isArray(v)) {
    v.forEach((item, i) => {
      const s = scalarText(item);
      const eq = s.indexOf('=');
      if (eq <= 0) fail([...path, i], `'${s}' is not ${what} (KEY=VALUE)`);
      else out[s.slice(0, eq)] = s.slice(eq + 1);
    });
  } else {
    for (const [k, x] of Object.entries(obj(v))) out[k] = scalarText(x);
  }
  return out;
};

// ---- canonical forms of list items ------------------------------------------------------------

const PORT = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/;

/** `expose:` items: "80", "80/udp", "8000-8002" -> one "port/protocol" each. */
function exposed(v: unknown, path: Path, fail: Fail): Item[] {
  return (Array.isArray(v) ? v : []).flatMap((x, i): Item[] => {
    const m = PORT.exec(scalarText(x));
    const lo = Number(m?.[1]);
    const hi = Number(m?.[2] ?? m?.[1]);
    if (!m || lo < 1 || hi > 65535 || lo > hi) {
      fail([...path, i], `'${scalarText(x)}' is not a port or range to expose (like 80, 8000-8010 or 53/udp)`);
      return [];
    }
    return Array.from({ length: hi - lo + 1 }, (_, k) => [`${lo + k}/${m[3] ?? 'tcp'}`, [...path, i]]);
  });
}

/** A capability as Docker compares them: upper case, without the CAP_ prefix. */
export const capability = (s: string) => s.toUpperCase().replace(/^CAP_/, '');

const CAPABILITY = /^[A-Z_]+$/;
const capabilities = items((s) => (CAPABILITY.test(capability(s)) ? capability(s) : { error: `'${s}' is not a capability (like NET_ADMIN)` }));

/** `extra_hosts:` as "host:ip": list items "host:ip" or "host=ip", or a mapping host -> ip or [ip, ...]. */
function extraHosts(v: unknown, path: Path, fail: Fail): Item[] {
  const pairs: Array<[string, string, Path]> = [];
  if (Array.isArray(v)) {
    v.forEach((x, i) => {
      const s = scalarText(x);
      const sep = s.includes('=') ? s.indexOf('=') : s.indexOf(':');
      if (sep <= 0) fail([...path, i], `'${s}' is not a host entry (HOST:IP or HOST=IP)`);
      else pairs.push([s.slice(0, sep), s.slice(sep + 1), [...path, i]]);
    });
  } else {
    for (const [host, ips] of Object.entries(obj(v))) {
      for (const ip of Array.isArray(ips) ? ips : [ips]) pairs.push([host, scalarText(ip), [...path, host]]);
    }
  }
  return pairs.flatMap(([host, ip, at]): Item[] => {
    const bare = ip.replace(/^\[(.*)\]$/, '$1');
    if (bare === '' || !/^[0-9a-fA-F.:]+$|^host-gateway$/.test(bare)) {
      fail(at, `'${ip}' is not an IP address (or host-gateway) for ${host}`);
      return [];
    }
    return [[`${host}:${bare}`, at]];
  });
}

/** `tmpfs:` items: "/path[:options]". */
const tmpfs = items((s) => (s.startsWith('/') ? s : { error: `'${s}' must be an absolute path in the container (like /run or /tmp:size=64m)` }));

const PERMISSIONS = /^[rwm]{1,3}$/;

/** `devices:` as "host:container:permissions", from "host[:container[:permissions]]" or { source, target, permissions }. */
function devices(v: unknown, path: Path, fail: Fail): Item[] {
  return (Array.isArray(v) ? v : []).flatMap((x, i): Item[] => {
    let parts: string[];
    if (typeof x === 'string') parts = x.split(':');
    else {
      const d = obj(x);
      parts = [scalarText(d.source), scalarText(d.target ?? d.source), scalarText(d.permissions ?? 'rwm')];
    }
    const [source, target = source, permissions = 'rwm'] = parts;
    if (parts.length > 3 || !source.startsWith('/') || !target.startsWith('/') || !PERMISSIONS.test(permissions)) {
      const shown = typeof x === 'string' ? x : parts.join(':');
      fail([...path, i], `'${shown}' is not a device (HOST_PATH[:CONTAINER_PATH[:PERMISSIONS]], absolute paths, permissions of r, w, m)`);
      return [];
    }
    return [[`${source}:${target}:${permissions}`, [...path, i]]];
  });
}

/** `gpus: all` or a list of { driver, count, device_ids, capabilities, options }, as Docker's DeviceRequests. */
function gpus(v: unknown, path: Path, fail: Fail): Item[] {
  if (v === 'all') return [[{ Driver: '', Count: -1, DeviceIDs: [], Capabilities: [['gpu']], Options: {} }, path]];
  return (Array.isArray(v) ? v : []).flatMap((x, i): Item[] => {
    const g = obj(x);
    const at: Path = [...path, i];
    const count = g.count === undefined ? (g.device_ids === undefined ? -1 : 0) : g.count === 'all' ? -1 : toInt(g.count);
    if (count === undefined || count < -1) {
      fail([...at, 'count'], `'${scalarText(g.count)}' is not a number of GPUs (or all)`);
      return [];
    }
    const capabilities = [...new Set([...((g.capabilities as string[] | undefined) ?? []), 'gpu'])];
    const options = dict('a driver option')(g.options, [...at, 'options'], fail);
    const ids = ((g.device_ids as string[] | undefined) ?? []).map(String);
    return [[{ Driver: scalarText(g.driver), Count: count, DeviceIDs: ids, Capabilities: [capabilities], Options: options }, at]];
  });
}

interface Ulimit {
  soft: number;
  hard: number;
}

function ulimits(v: unknown, path: Path, fail: Fail): Record<string, Ulimit> {
  const out: Record<string, Ulimit> = {};
  for (const [name, x] of Object.entries(obj(v))) {
    const single = typeof x === 'object' && x !== null ? undefined : toInt(x);
    const soft = single ?? toInt(obj(x).soft);
    const hard = single ?? toInt(obj(x).hard);
    if (soft === undefined || hard === undefined || soft < -1 || hard < -1) fail([...path, name], 'must be a number, or soft and hard numbers (-1: unlimited)');
    else if (hard !== -1 && (soft === -1 || soft > hard)) fail([...path, name], `the soft limit ${soft} is above the hard limit ${hard}`);
    else out[name] = { soft, hard };
  }
  return out;
}

interface Logging {
  driver?: string;
  options: Record<string, string>;
}

function logging(v: unknown, path: Path, fail: Fail): Logging {
  const l = obj(v);
  const options = dict('a logging option')(l.options, [...path, 'options'], fail);
  return typeof l.driver === 'string' ? { driver: l.driver, options } : { options };
}

/** Compose's rule: options merge while the driver stays the same; another driver starts afresh. */
function mergeLogging(base: unknown, over: unknown): Logging {
  const [a, b] = [base as Logging, over as Logging];
  if (b.driver !== undefined && a.driver !== undefined && b.driver !== a.driver) return b;
  return { ...a, ...b, driver: b.driver ?? a.driver, options: { ...a.options, ...b.options } };
}

interface Blkio {
  weight?: number;
  /** per list key (weight_device, device_read_bps, ...): device path -> weight or rate */
  devices: Record<string, Record<string, number>>;
}

const BLKIO_LISTS = {
  weight_device: ['BlkioWeightDevice', 'Weight'],
  device_read_bps: ['BlkioDeviceReadBps', 'Rate'],
  device_write_bps: ['BlkioDeviceWriteBps', 'Rate'],
  device_read_iops: ['BlkioDeviceReadIOps', 'Rate'],
  device_write_iops: ['BlkioDeviceWriteIOps', 'Rate'],
} as const;

function blkio(v: unknown, path: Path, fail: Fail): Blkio {
  const b = obj(v);
  const out: Blkio = { devices: {} };
  const weight = int('a block IO weight (10 to 1000, 0: none)', 0, 1000);
  if (b.weight !== undefined) out.weight = weight(b.weight, [...path, 'weight'], fail);
  for (const key of Object.keys(BLKIO_LISTS) as (keyof typeof BLKIO_LISTS)[]) {
    if (b[key] === undefined) continue;
    const per: Record<string, number> = {};
    (b[key] as unknown[]).forEach((x, i) => {
      const d = obj(x);
      const at: Path = [...path, key, i];
      const raw = key === 'weight_device' ? d.weight : d.rate;
      const n =
        key === 'weight_device'
          ? weight(raw, [...at, 'weight'], fail)
          : key.endsWith('bps')
            ? bytes('a rate in bytes')(raw, [...at, 'rate'], fail)
            : int('a number of operations a second', 0)(raw, [...at, 'rate'], fail);
      if (typeof d.path !== 'string' || !d.path.startsWith('/')) fail([...at, 'path'], 'must be the absolute path of a device (like /dev/sda)');
      else if (n !== undefined) per[d.path] = n;
    });
    out.devices[key] = per;
  }
  return out;
}

/** weight replaced, device entries merged by device path. */
function mergeBlkio(base: unknown, over: unknown): Blkio {
  const [a, b] = [base as Blkio, over as Blkio];
  const devices = { ...a.devices };
  for (const [key, per] of Object.entries(b.devices)) devices[key] = { ...devices[key], ...per };
  const weight = b.weight ?? a.weight;
  return weight === undefined ? { devices } : { weight, devices };
}

// ---- the keys ---------------------------------------------------------------------------------

const toHost = (field: string) => (v: unknown, out: Out) => void (out.hostConfig[field] = v);
const toConfig = (field: string) => (v: unknown, out: Out) => void (out.config[field] = v);

const HOSTNAME = /^[a-zA-Z0-9][a-zA-Z0-9._-]*$/;
const PLATFORM = /^[a-z0-9_-]+(\/[a-z0-9_-]+){0,2}$/;
const MAC = /^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/;
const NAMESPACE = (extra: string[]) => new RegExp(`^(host|${extra.join('|')}|container:.+)$`);

/** Every long-tail key berth honours by passing it through, by its Compose name. */
const RULES: Record<string, Rule> = {
  expose: { merge: 'append', read: exposed, docker: (v, out) => void (out.config.ExposedPorts = Object.fromEntries((v as string[]).map((p) => [p, {}]))) },
  cap_add: { merge: 'append', read: capabilities, docker: toHost('CapAdd') },
  cap_drop: { merge: 'append', read: capabilities, docker: toHost('CapDrop') },
  platform: {
    merge: 'replace',
    read: text(PLATFORM, 'a platform (os[/arch[/variant]], like linux/amd64)'),
    docker: (v, out) => void (out.platform = v as string),
  },
  runtime: { merge: 'replace', read: text(/^[\w.-]+$/, 'a runtime name (like runc)'), docker: toHost('Runtime') },
  hostname: { merge: 'replace', read: text(HOSTNAME, 'a host name'), docker: toConfig('Hostname') },
  domainname: { merge: 'replace', read: text(HOSTNAME, 'a domain name'), docker: toConfig('Domainname') },
  stdin_open: { merge: 'replace', read: bool, docker: toConfig('OpenStdin') },
  tty: { merge: 'replace', read: bool, docker: toConfig('Tty') },
  sysctls: { merge: 'map', read: dict('a sysctl'), docker: toHost('Sysctls') },
  network_mode: {
    merge: 'replace',
    read: text(/^(host|none|bridge|(service|container):.+)$/, 'a network mode (host, none, bridge, service:NAME or container:NAME)'),
  },
  ulimits: {
    merge: 'map',
    read: ulimits,
    docker: (v, out) => {
      const limits = Object.entries(v as Record<string, Ulimit>).sort(([a], [b]) => (a < b ? -1 : 1));
      out.hostConfig.Ulimits = limits.map(([Name, l]) => ({ Name, Soft: l.soft, Hard: l.hard }));
    },
  },
  logging: {
    merge: mergeLogging,
    read: logging,
    docker: (v, out) => void (out.hostConfig.LogConfig = { Type: (v as Logging).driver ?? '', Config: (v as Logging).options }),
  },
  tmpfs: {
    merge: 'append',
    read: tmpfs,
    docker: (v, out) => {
      const split = (s: string) => (s.includes(':') ? [s.slice(0, s.indexOf(':')), s.slice(s.indexOf(':') + 1)] : [s, '']);
      out.hostConfig.Tmpfs = Object.fromEntries((v as string[]).map(split));
    },
  },
  extra_hosts: { merge: 'append', read: extraHosts, docker: toHost('ExtraHosts') },
  dns: { merge: 'append', read: items(), docker: toHost('Dns') },
  dns_search: { merge: 'append', read: items(), docker: toHost('DnsSearch') },
  dns_opt: { merge: 'append', read: items(), docker: toHost('DnsOptions') },
  init: { merge: 'replace', read: bool, docker: toHost('Init') },
  privileged: { merge: 'replace', read: bool, docker: toHost('Privileged') },
  read_only: { merge: 'replace', read: bool, docker: toHost('ReadonlyRootfs') },
  shm_size: { merge: 'replace', read: bytes('a size'), docker: toHost('ShmSize') },
  security_opt: {
    merge: 'append',
    read: items((s) =>
      /^seccomp[=:](?!unconfined$)/.test(s)
        ? { error: `'${s}': berth passes no seccomp profile file to Docker (only seccomp=unconfined, under the repo's policy)` }
        : s,
    ),
    docker: toHost('SecurityOpt'),
  },
  devices: {
    merge: 'append',
    read: devices,
    docker: (v, out) => {
      const split = (s: string) => s.split(':');
      out.hostConfig.Devices = (v as string[])
        .map(split)
        .map(([PathOnHost, PathInContainer, CgroupPermissions]) => ({ PathOnHost, PathInContainer, CgroupPermissions }));
    },
  },
  pid: { merge: 'replace', read: text(NAMESPACE([]), 'a PID mode berth supports (host or container:NAME)'), docker: toHost('PidMode') },
  ipc: {
    merge: 'replace',
    read: text(NAMESPACE(['none', 'private', 'shareable']), 'an IPC mode berth supports (none, private, shareable, host or container:NAME)'),
    docker: toHost('IpcMode'),
  },
  mem_limit: { merge: 'replace', read: bytes('an amount of memory') },
  mem_reservation: { merge: 'replace', read: bytes('an amount of memory') },
  memswap_limit: {
    merge: 'replace',
    read: (v, path, fail) => (toInt(v) === -1 ? -1 : bytes('an amount of memory and swap (-1: unlimited)')(v, path, fail)),
    docker: toHost('MemorySwap'),
  },
  mem_swappiness: { merge: 'replace', read: int('a swappiness from 0 to 100', 0, 100), docker: toHost('MemorySwappiness') },
  cpus: {
    merge: 'replace',
    read: (v, path, fail) => {
      const n = toNumber(v);
      if (n === undefined || n < 0) fail(path, `'${scalarText(v)}' is not a number of CPUs (like 0.5 or 2)`);
      return n;
    },
  },
  cpu_shares: { merge: 'replace', read: int('a number of CPU shares', 0), docker: toHost('CpuShares') },
  cpu_period: { merge: 'replace', read: micros(0), docker: toHost('CpuPeriod') },
  cpu_quota: { merge: 'replace', read: micros(-1), docker: toHost('CpuQuota') },
  cpu_rt_runtime: { merge: 'replace', read: micros(-1), docker: toHost('CpuRealtimeRuntime') },
  cpu_rt_period: { merge: 'replace', read: micros(0), docker: toHost('CpuRealtimePeriod') },
  cpuset: { merge: 'replace', read: text(/^\d+([-,]\d+)*$/, 'a CPU set (like 0-3 or 0,2)'), docker: toHost('CpusetCpus') },
  cgroup: { merge: 'replace', read: text(/^(host|private)$/, 'a cgroup namespace mode (host or private)'), docker: toHost('CgroupnsMode') },
  cgroup_parent: { merge: 'replace', read: text(), docker: toHost('CgroupParent') },
  group_add: { merge: 'append', read: items(), docker: toHost('GroupAdd') },
  oom_kill_disable: { merge: 'replace', read: bool, docker: toHost('OomKillDisable') },
  oom_score_adj: { merge: 'replace', read: int('an OOM score adjustment from -1000 to 1000', -1000, 1000), docker: toHost('OomScoreAdj') },
  pids_limit: { merge: 'replace', read: int('a number of processes (-1: no limit)', -1) },
  userns_mode: { merge: 'replace', read: text(/^host$/, 'a user namespace mode berth supports (host)'), docker: toHost('UsernsMode') },
  uts: { merge: 'replace', read: text(/^host$/, 'a UTS mode berth supports (host)'), docker: toHost('UTSMode') },
  storage_opt: { merge: 'map', read: dict('a storage option'), docker: toHost('StorageOpt') },
  blkio_config: {
    merge: mergeBlkio,
    read: blkio,
    docker: (v, out) => {
      const b = v as Blkio;
      if (b.weight !== undefined) out.hostConfig.BlkioWeight = b.weight;
      for (const [key, [field, unit]] of Object.entries(BLKIO_LISTS)) {
        const per = b.devices[key];
        if (per) out.hostConfig[field] = Object.entries(per).map(([Path, n]) => ({ Path, [unit]: n }));
      }
    },
  },
  device_cgroup_rules: {
    merge: 'append',
    read: items((s) => (/^[abc] (\*|\d+):(\*|\d+) [rwm]{1,3}$/.test(s) ? s : { error: `'${s}' is not a device cgroup rule (like 'c 1:3 mr')` })),
    docker: toHost('DeviceCgroupRules'),
  },
  mac_address: { merge: 'replace', read: text(MAC, 'a MAC address'), docker: toConfig('MacAddress') },
  annotations: { merge: 'map', read: dict('an annotation'), docker: toHost('Annotations') },
  gpus: { merge: 'append', read: gpus, docker: toHost('DeviceRequests') },
  scale: { merge: 'replace', read: int('a number of replicas', 0) },
  profiles: { merge: 'append', read: items() },
};

/** The service keys this module reads (the rest of a service is normalize.ts's). */
export const PASS_KEYS: readonly string[] = Object.keys(RULES);

/** Reads the long-tail keys of one service (`s`, at `base`) of one file. */
export function passPart(src: YamlSource, s: Record<string, unknown>, base: Path, fail: Fail): PassPart {
  const part: PassPart = new Map();
  for (const [key, rule] of Object.entries(RULES)) {
    const v = s[key];
    if (v === undefined || v === null) continue;
    const path = [...base, key];
    const value = rule.read(v, path, fail);
    if (value === undefined) continue;
    if (rule.merge === 'append') {
      const seen = new Set<string>();
      const list = (value as Item[]).filter(([x]) => !seen.has(JSON.stringify(x)) && seen.add(JSON.stringify(x)));
      part.set(
        key,
        list.map(([x, at]) => ({ value: x, at: siteOf(src, at) })),
      );
    } else {
      const keys = keySites(src, v, path);
      part.set(key, [keys ? { value, at: siteOf(src, path), keys } : { value, at: siteOf(src, path) }]);
    }
  }
  return part;
}

/** Where each key of a mapping (or each KEY of a list of "KEY=VALUE") is written; undefined for a scalar. */
function keySites(src: YamlSource, v: unknown, path: Path): Record<string, Site> | undefined {
  if (Array.isArray(v)) {
    const out: Record<string, Site> = {};
    v.forEach((item, i) => {
      const s = scalarText(item);
      if (s.indexOf('=') > 0) out[s.slice(0, s.indexOf('='))] = siteOf(src, [...path, i]);
    });
    return out;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  return Object.fromEntries(Object.keys(v).map((k) => [k, siteOf(src, [...path, k], { key: true })]));
}

/** Two files' long-tail keys merged with Compose's rules. */
export function mergePass(base: PassPart, over: PassPart): PassPart {
  const out = new Map(base);
  for (const [key, items] of over) {
    const rule = RULES[key];
    const before = out.get(key);
    if (!before || rule.merge === 'replace') out.set(key, items);
    else if (rule.merge === 'append') {
      const seen = new Set(before.map((x) => JSON.stringify(x.value)));
      out.set(key, [...before, ...items.filter((x) => !seen.has(JSON.stringify(x.value)))]);
    } else {
      const merge = rule.merge === 'map' ? (a: unknown, b: unknown) => ({ ...(a as object), ...(b as object) }) : rule.merge;
      const keys = { ...before[0].keys, ...items[0].keys };
      out.set(key, [{ value: merge(before[0].value, items[0].value), at: items[0].at, keys }]);
    }
  }
  return out;
}

/** The value of a key (a list key's items as a list), or undefined when unset. */
export function passValue<T>(part: PassPart, key: string): T | undefined {
  const entries = part.get(key);
  if (!entries) return undefined;
  return (RULES[key].merge === 'append' ? entries.map((e) => e.value) : entries[0].value) as T;
}

/** Where a key (its first item for a list) was written, when set. */
export function passSite(part: PassPart, key: string) {
  return part.get(key)?.[0]?.at;
}

type PassFields = Pick<ServiceSpec, 'replicas' | 'limits' | 'reservations' | 'networkMode' | 'extras'>;

/**
 * The ServiceSpec fields the long tail sets: Docker's create options (`extras`), the network
 * mode, and `scale`, `cpus`, `mem_limit`, `pids_limit`, `mem_reservation` folded into replicas,
 * limits and reservations. Where those say something else than `deploy:`, an error (Compose
 * refuses that too).
 */
export function passFields(
  part: PassPart,
  deploy: DeployPart,
  spec: Pick<ServiceSpec, 'mode' | 'replicas' | 'limits' | 'reservations'>,
  errors: SourceError[],
): PassFields {
  const out: PassFields = { replicas: spec.replicas, limits: { ...spec.limits }, reservations: { ...spec.reservations } };
  const fold = (key: string, into: Resources, field: keyof Resources, given: number | undefined, deployKey: string, show: (n: number) => string) => {
    const raw = passValue<number>(part, key);
    if (raw === undefined) return;
    const value = field === 'pids' ? Math.max(raw, 0) : raw;
    if (given !== undefined && given !== value) {
      errors.push(siteError(passSite(part, key)!, `${show(raw)} differs from ${deployKey} (${show(given)}): give one of them`));
    } else if (value !== 0) into[field] = value;
  };
  fold('cpus', out.limits, 'cpus', deploy.limits.cpus, 'deploy.resources.limits.cpus', String);
  fold('mem_limit', out.limits, 'memoryBytes', deploy.limits.memoryBytes, 'deploy.resources.limits.memory', String);
  fold('pids_limit', out.limits, 'pids', deploy.limits.pids, 'deploy.resources.limits.pids', String);
  fold('mem_reservation', out.reservations, 'memoryBytes', deploy.reservations.memoryBytes, 'deploy.resources.reservations.memory', String);

  const scale = passValue<number>(part, 'scale');
  if (scale !== undefined) {
    if (spec.mode === 'global')
      errors.push(siteError(passSite(part, 'scale')!, 'cannot be used with mode: global (a global service runs one replica on each eligible host)'));
    else if (deploy.replicas && deploy.replicas.value !== scale) {
      errors.push(siteError(passSite(part, 'scale')!, `${scale} differs from deploy.replicas (${deploy.replicas.value}): give one of them`));
    } else out.replicas = scale;
  }
  const networkMode = passValue<string>(part, 'network_mode');
  if (networkMode !== undefined) out.networkMode = networkMode;

  const extras: DockerExtras = { config: {}, hostConfig: {}, view: {} };
  for (const [key, rule] of Object.entries(RULES)) {
    const value = passValue(part, key);
    if (value === undefined || !rule.docker) continue;
    rule.docker(value, extras);
    extras.view[key] = value;
  }
  if (Object.keys(extras.view).length > 0) out.extras = extras;
  return out;
}
