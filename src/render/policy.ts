/**
 * What a repo's Compose files may ask of the hosts beyond an ordinary container, like Argo CD's
 * projects: privileged containers (and what amounts to the same: capabilities that open the host,
 * host devices, switched-off confinement), the host's network, the host's namespaces, and bind
 * mounts outside the allowed host paths are refused unless the repo's `policy:` in berth's config
 * allows them. Pure: the policy comes in as data.
 */
import { posix } from 'node:path';
import type { RepoPolicy, SourceError } from '../model.ts';
import type { ServicePart } from './normalize.ts';
import { capability } from './passthrough.ts';
import { siteError, type Site } from './positions.ts';

/** The default: nothing beyond an ordinary container. */
export const STRICT_POLICY: RepoPolicy = { privileged: false, hostNetwork: false, hostNamespaces: false, bindMounts: [] };

/** Capabilities that give a container the run of its host; `cap_add` of one needs policy.privileged. */
export const HOST_CAPABILITIES = ['ALL', 'SYS_ADMIN', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_PTRACE', 'DAC_READ_SEARCH', 'BPF'];

/** `security_opt` entries that switch confinement off; they need policy.privileged. */
const UNCONFINED = /^((seccomp|apparmor|systempaths)[=:]unconfined|label[=:]disable)$/i;

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
  const entries = (key: string) => s.pass.get(key) ?? [];
  const PRIVILEGED = 'policy.privileged: true';

  if (!policy.privileged) {
    for (const e of entries('privileged')) if (e.value === true) refuse(e.at, 'a privileged container', PRIVILEGED);
    for (const e of entries('cap_add')) {
      if (HOST_CAPABILITIES.includes(capability(String(e.value)))) refuse(e.at, `the capability ${String(e.value)} (it opens the host)`, PRIVILEGED);
    }
    for (const e of entries('devices')) refuse(e.at, `the host device ${String(e.value).split(':')[0]}`, PRIVILEGED);
    for (const e of entries('device_cgroup_rules')) refuse(e.at, `the device cgroup rule '${String(e.value)}'`, PRIVILEGED);
    for (const e of entries('security_opt')) if (UNCONFINED.test(String(e.value))) refuse(e.at, `${String(e.value)} (confinement off)`, PRIVILEGED);
  }
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
