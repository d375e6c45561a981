/**
 * berth's own rules on top of the Compose schema: the keys berth honours today. Every other key
 * (valid Compose, but not yet honoured) is refused with its key path and position, never dropped.
 */
import type { SourceError } from '../model.ts';
import { PASS_KEYS } from './passthrough.ts';
import { errorAt, type Path, type YamlSource } from './positions.ts';

/**
 * What may appear under a key: `true` anything (the schema already checked it), `false` refused
 * even as an `x-` key, a string refused for the reason it gives, or a mapping of allowed keys
 * where `'*'` stands for any key (names) and `'[]'` for the items of a list. `x-*` extension keys
 * are allowed everywhere unless listed `false`.
 */
type Shape = boolean | string | { readonly [key: string]: Shape };

const WINDOWS = 'for Windows containers only (berth runs Linux containers)';

const RESOURCE: Shape = { '*': { driver: true, external: {}, name: true, labels: true } };

const NETWORK: Shape = {
  '*': {
    driver: true,
    external: {},
    name: true,
    labels: true,
    ipam: { driver: true, config: { '[]': { subnet: true, ip_range: true, gateway: true, aux_addresses: true } }, options: true },
    enable_ipv6: true,
  },
};

const SERVICE: Shape = {
  image: true,
  command: true,
  entrypoint: true,
  environment: true,
  env_file: { '[]': { path: true, required: true } },
  ports: { '[]': { target: true, published: true, host_ip: true, protocol: true, mode: true } },
  volumes: { '[]': { type: true, source: true, target: true, read_only: true } },
  networks: { '*': { aliases: true, ipv4_address: true, ipv6_address: true, link_local_ips: true } },
  labels: true,
  healthcheck: { test: true, interval: true, timeout: true, start_period: true, start_interval: true, retries: true, disable: true },
  restart: true,
  user: true,
  working_dir: true,
  stop_grace_period: true,
  stop_signal: true,
  deploy: {
    replicas: true,
    mode: true,
    placement: true,
    resources: { reservations: { cpus: true, memory: true }, limits: true },
    update_config: true,
    rollback_config: true,
  },
  depends_on: { '*': { condition: true } },
  container_name: true,
  pull_policy: true,
  build: {
    context: true,
    dockerfile: true,
    dockerfile_inline: true,
    args: true,
    target: true,
    labels: true,
    no_cache: true,
    pull: true,
    network: true,
    shm_size: true,
    extra_hosts: true,
    cache_from: true,
    tags: true,
  },
  secrets: { '[]': { source: true, target: true, uid: true, gid: true, mode: true } },
  configs: { '[]': { source: true, target: true, uid: true, gid: true, mode: true } },
  'x-berth': true, // its keys are checked in job.ts
  // the long tail, passed through to Docker (passthrough.ts)
  ...Object.fromEntries(PASS_KEYS.map((k) => [k, true])),
  extends: true,
  // no meaning for a deployment tool: accepted, no effect
  attach: true,
  develop: true,
  // refused for good reasons
  cpu_count: WINDOWS,
  cpu_percent: WINDOWS,
  credential_spec: WINDOWS,
  isolation: WINDOWS,
  links: "every service already answers to its name on the stack's network (give other names with networks: { NAME: { aliases: [...] } })",
  external_links: "a stack's containers reach only what is on its networks (join an external network under networks: instead)",
  volumes_from: "a service's replicas may run on other hosts than the other service's: share a named volume instead",
  use_api_socket: "it hands the host's Docker API to the container: bind-mount the socket instead, where the repo's policy allows it (policy.bindMounts)",
  label_file: 'not supported by berth yet (write the labels under labels:)',
  post_start: 'not supported by berth yet (lifecycle hooks)',
  pre_stop: 'not supported by berth yet (lifecycle hooks)',
  pull_refresh_after: 'not supported by berth yet',
  provider: 'a provider service is run by a Compose plugin, not as a container',
  models: 'models are run by Docker Model Runner, not as containers',
};

const SECRET: Shape = { '*': { file: true, environment: true, external: true, name: true } };
const CONFIG: Shape = { '*': { file: true, environment: true, content: true, external: true, name: true } };

const COMPOSE_FILE: Shape = {
  version: true,
  name: true,
  include: true,
  services: { '*': SERVICE },
  networks: NETWORK,
  volumes: RESOURCE,
  secrets: SECRET,
  configs: CONFIG,
  models: 'models are run by Docker Model Runner, not as containers',
};

/** Errors for every key of a (schema-valid) Compose file that berth does not honour yet. */
export function unsupportedKeys(data: unknown, src: YamlSource): SourceError[] {
  const errors: SourceError[] = [];
  walk(data, COMPOSE_FILE, [], (path, why) => errors.push(errorAt(src, path, refusal(why), { key: true })));
  return errors;
}

/** "not supported by berth yet", or "not supported by berth: <why>" (a why that says "yet" stands alone). */
function refusal(why?: string): string {
  if (why === undefined) return 'not supported by berth yet';
  return why.startsWith('not supported') ? why : `not supported by berth: ${why}`;
}

function walk(data: unknown, shape: Shape, path: Path, refuse: (path: Path, why?: string) => void): void {
  if (typeof shape !== 'object' || data === null || typeof data !== 'object') return;
  if (Array.isArray(data)) {
    const item = shape['[]'];
    if (item !== undefined) data.forEach((d, i) => walk(d, item, [...path, i], refuse));
    return;
  }
  for (const [key, value] of Object.entries(data)) {
    const sub = Object.hasOwn(shape, key) ? shape[key] : key.startsWith('x-') ? true : shape['*'];
    if (sub === undefined || sub === false) refuse([...path, key]);
    else if (typeof sub === 'string') refuse([...path, key], sub);
    else walk(value, sub, [...path, key], refuse);
  }
}
