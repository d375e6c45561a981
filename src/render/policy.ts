/**
 * What a repo's Compose files may ask of the hosts beyond an ordinary container, like Argo CD's
 * projects. The default is strict and works by allow-list: whatever widens a container beyond
 * Docker's defaults is refused unless the repo's `policy:` in berth's config allows it (the table
 * in docs/config.md, "A repo's policy"): a privileged container, capabilities outside Docker's
 * default set, devices and GPUs, security options other than no-new-privileges and AppArmor
 * profiles, the host's network and namespaces, another container's namespaces, bind mounts
 * outside the allowed host paths, a cgroup parent, OOM protection, runtimes, sysctls outside the
 * safe set, log drivers other than Docker's local ones, and annotations. Pure: the policy comes in
 * as data.
 */
import { posix } from 'node:path';
import type { RepoPolicy, SourceError } from '../model.ts';
import type { ServicePart } from './normalize.ts';
import { capability, type PassEntry } from './passthrough.ts';
import { siteError, type Site } from './positions.ts';

/** The default: nothing beyond an ordinary container. */
export const STRICT_POLICY: RepoPolicy = { privileged: false, hostNetwork: false, hostNamespaces: false, bindMounts: [] };

/** The capabilities Docker gives every container: adding one of them widens nothing. */
export const DEFAULT_CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'MKNOD',
  'NET_RAW',
  'SETGID',
  'SETUID',
  'SETFCAP',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
];

/** Capabilities that give a container the run of its host: their refusal says so. */
export const HOST_CAPABILITIES = ['ALL', 'SYS_ADMIN', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_PTRACE', 'DAC_READ_SEARCH', 'BPF'];

/**
 * `security_opt` entries (the first `:` written as `=`) that only tighten a container: no new
 * privileges (`:false` is refused: it would undo a daemon that sets it for every container), and
 * an AppArmor profile other than unconfined. berth refuses seccomp profile files when it reads them.
 */
const TIGHTENING = /^(no-new-privileges(=true)?|apparmor=(?!unconfined$).+)$/i;

/** `security_opt` entries that switch confinement off (their refusal says so). */
const UNCONFINED = /^((seccomp|apparmor|systempaths)=unconfined|label=disable|disable)$/i;

/** "label:disable" and "label=disable" are one option to Docker. */
const securityOption = (s: string) => s.replace(/^([^:=]+)[:=]/, '$1=');

/**
 * Log drivers that keep a container's logs in Docker's own directory on the host (Docker's default
 * and its local format); any other sends them elsewhere (syslog, gelf, fluentd, a cloud) or
 * nowhere (none) and needs policy.logDrivers.
 */
export const LOCAL_LOG_DRIVERS = ['json-file', 'local'];

/**
 * Sysctls a container may set without a policy, as Kubernetes' "safe sysctls": those of the
 * network namespace (`net.*`, which Docker allows per container) while the container has a
 * network namespace of its own, and `kernel.shm_rmid_forced` while it has an IPC namespace of its
 * own. With `network_mode: host`, `container:` or `service:` (or `ipc: host`/`container:`) the
 * same sysctl would change the host's or another container's namespace.
 */
function sysctlScope(name: string): 'net' | 'ipc' | undefined {
  if (name.startsWith('net.')) return 'net';
  if (name === 'kernel.shm_rmid_forced') return 'ipc';
  return undefined;
}

/** A sysctl name with dots: "net/ipv4/ip_forward" (slashes as separators) is net.ipv4.ip_forward. */
const sysctlName = (s: string) => (s.includes('/') ? s.replace(/[./]/g, (c) => (c === '/' ? '.' : '/')) : s);

const NAMESPACE_KEYS = ['pid', 'ipc', 'uts', 'userns_mode', 'cgroup'];

/** The keys that can join another container's namespace (`container:NAME`), and the namespace each names. */
const JOIN_KEYS: Record<string, string> = { network_mode: 'network', pid: 'PID', ipc: 'IPC' };

/** Whether `name` is one of `patterns`: a name, or `prefix*` for every name that starts so. */
export function nameListed(name: string, patterns: readonly string[] | undefined): boolean {
  return (patterns ?? []).some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

/** Errors for everything of service `s` (merged) that `policy` does not allow. */
export function policyErrors(s: ServicePart, policy: RepoPolicy): SourceError[] {
  const errors: SourceError[] = [];
  const refuse = (at: Site, what: string, setting: string) =>
    errors.push(siteError(at, `${what} is not allowed for this repo: allow it with ${setting} on the repo in berth's config`));
  const entries = (key: string): PassEntry[] => s.pass.get(key) ?? [];
  /** A mapping key's (sysctls, annotations, ...) names with where each was written. */
  const named = (key: string): Array<[string, Site]> =>
    entries(key).flatMap((e) => Object.keys(e.value as Record<string, unknown>).map((k): [string, Site] => [k, e.keys?.[k] ?? e.at]));
  const single = (key: string) => entries(key)[0]?.value;

  // A privileged container has every capability, device and security option anyway: the one
  // setting that allows it allows those too.
  if (!policy.privileged) {
    for (const e of entries('privileged')) if (e.value === true) refuse(e.at, 'a privileged container', 'policy.privileged: true');
    const allowedCaps = (policy.capabilities ?? []).map(capability);
    for (const e of entries('cap_add')) {
      const cap = String(e.value);
      if (DEFAULT_CAPABILITIES.includes(cap) || allowedCaps.includes('ALL') || nameListed(cap, allowedCaps)) continue;
      const why = HOST_CAPABILITIES.includes(cap) ? 'it opens the host' : "not in Docker's default set";
      refuse(e.at, `the capability ${cap} (${why})`, `policy.capabilities: ["${cap}"]`);
    }
    const allowedOpts = (policy.securityOpt ?? []).map(securityOption);
    for (const e of entries('security_opt')) {
      const opt = securityOption(String(e.value));
      if (TIGHTENING.test(opt) || nameListed(opt, allowedOpts)) continue;
      refuse(e.at, `the security option ${String(e.value)}${UNCONFINED.test(opt) ? ' (confinement off)' : ''}`, `policy.securityOpt: ["${String(e.value)}"]`);
    }
    if (!policy.devices) {
      const DEVICES = 'policy.devices: true';
      for (const e of entries('devices')) refuse(e.at, `the host device ${String(e.value).split(':')[0]}`, DEVICES);
      for (const e of entries('device_cgroup_rules')) refuse(e.at, `the device cgroup rule '${String(e.value)}'`, DEVICES);
      for (const e of entries('gpus')) refuse(e.at, "the host's GPUs", DEVICES);
    }
  }
  const networkMode = single('network_mode') as string | undefined;
  if (!policy.hostNetwork) {
    for (const e of entries('network_mode')) if (e.value === 'host') refuse(e.at, "the host's network", 'policy.hostNetwork: true');
    if (s.build?.network === 'host') refuse(s.build.networkAt ?? s.build.at, "a build on the host's network", 'policy.hostNetwork: true');
  }
  if (!policy.hostNamespaces) {
    for (const key of NAMESPACE_KEYS) {
      for (const e of entries(key))
        if (e.value === 'host') refuse(e.at, `the host's ${key === 'userns_mode' ? 'user' : key} namespace`, 'policy.hostNamespaces: true');
    }
  }
  // Another container's namespaces are another stack's, an unmanaged container's, or berth's own:
  // a service of the same stack is joined as service:NAME (resolved to its replica on the host).
  for (const [key, namespace] of Object.entries(JOIN_KEYS)) {
    for (const e of entries(key)) {
      const v = String(e.value);
      if (!v.startsWith('container:') || nameListed(v.slice('container:'.length), policy.joinContainers)) continue;
      const name = v.slice('container:'.length);
      const hint = key === 'network_mode' ? ' (a service of this stack: network_mode: service:NAME)' : '';
      refuse(e.at, `joining the ${namespace} namespace of the container ${name}${hint}`, `policy.joinContainers: ["${name}"]`);
    }
  }
  for (const { value: m, at } of s.volumes) {
    if (m.type !== 'bind' || m.source === undefined || m.repoPath !== undefined || bindAllowed(m.source, policy.bindMounts)) continue;
    const source = posix.normalize(m.source);
    refuse(at, `a bind mount of ${source}`, `policy.bindMounts: ["${source}"] (or a folder above it)`);
  }
  if (!policy.cgroupParent) {
    for (const e of entries('cgroup_parent')) refuse(e.at, `the cgroup parent ${String(e.value)}`, 'policy.cgroupParent: true');
  }
  if (!policy.oom) {
    for (const e of entries('oom_score_adj')) {
      if ((e.value as number) < 0)
        refuse(e.at, `an OOM score adjustment below 0 (${String(e.value)}: the host's OOM killer would spare it)`, 'policy.oom: true');
    }
    for (const e of entries('oom_kill_disable')) if (e.value === true) refuse(e.at, 'switching the OOM killer off', 'policy.oom: true');
  }
  // berth cannot know each host's default runtime: runc is a widening on a host whose default
  // is a sandbox (runsc, kata), so every runtime is listed.
  for (const e of entries('runtime')) {
    if (!nameListed(String(e.value), policy.runtimes)) refuse(e.at, `the runtime ${String(e.value)}`, `policy.runtimes: ["${String(e.value)}"]`);
  }
  const ipc = single('ipc') as string | undefined;
  const own = { net: networkMode === undefined || ['bridge', 'none'].includes(networkMode), ipc: ipc === undefined || !/^(host|container:)/.test(ipc) };
  for (const [written, at] of named('sysctls')) {
    const name = sysctlName(written);
    const scope = sysctlScope(name);
    if ((scope && own[scope]) || nameListed(name, policy.sysctls)) continue;
    const where = scope === 'net' ? `network_mode: ${networkMode}` : `ipc: ${ipc}`;
    refuse(at, `the sysctl ${written}${scope ? ` (not in a namespace of its own with ${where})` : ''}`, `policy.sysctls: ["${name}"]`);
  }
  for (const e of entries('logging')) {
    const driver = (e.value as { driver?: string }).driver;
    if (driver === undefined || LOCAL_LOG_DRIVERS.includes(driver) || nameListed(driver, policy.logDrivers)) continue;
    refuse(e.keys?.driver ?? e.at, `the log driver ${driver}`, `policy.logDrivers: ["${driver}"]`);
  }
  if (!policy.annotations) for (const [name, at] of named('annotations')) refuse(at, `the annotation ${name}`, 'policy.annotations: true');
  return errors;
}

/**
 * Whether a host path lies under one of the allowed prefixes: a prefix names a path and
 * everything below it ("/srv" and "/srv/" both allow /srv and /srv/app, not /srvx).
 */
export function bindAllowed(source: string, prefixes: readonly string[]): boolean {
  const path = posix.normalize(source).replace(/(.)\/$/, '$1');
  return prefixes.some((p) => {
    const prefix = posix.normalize(p).replace(/\/$/, '');
    return prefix === '' || path === prefix || path.startsWith(`${prefix}/`);
  });
}
