/**
 * berth's own rules on top of the Compose schema: the keys berth honours today. Every other key
 * (valid Compose, but not yet honoured) is refused with its key path and position, never dropped.
 */
import type { SourceError } from '../model.ts';
import { errorAt, type Path, type YamlSource } from './positions.ts';

/**
 * What may appear under a key: `true` anything (the schema already checked it), `false` refused
 * even as an `x-` key, or a mapping of allowed keys where `'*'` stands for any key (names) and
 * `'[]'` for the items of a list. `x-*` extension keys are allowed everywhere unless listed `false`.
 */
type Shape = boolean | { readonly [key: string]: Shape };

const RESOURCE: Shape = { '*': { driver: true, external: {}, name: true, labels: true } };

const SERVICE: Shape = {
  image: true,
  command: true,
  entrypoint: true,
  environment: true,
  env_file: { '[]': { path: true, required: true } },
  ports: { '[]': { target: true, published: true, host_ip: true, protocol: true, mode: true } },
  volumes: { '[]': { type: true, source: true, target: true, read_only: true } },
  networks: { '*': { aliases: true } },
  labels: true,
  healthcheck: { test: true, interval: true, timeout: true, start_period: true, retries: true, disable: true },
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
};

const SECRET: Shape = { '*': { file: true, environment: true, external: true, name: true } };
const CONFIG: Shape = { '*': { file: true, environment: true, content: true, external: true, name: true } };

const COMPOSE_FILE: Shape = {
  version: true,
  name: true,
  services: { '*': SERVICE },
  networks: RESOURCE,
  volumes: RESOURCE,
  secrets: SECRET,
  configs: CONFIG,
};

/** Errors for every key of a (schema-valid) Compose file that berth does not honour yet. */
export function unsupportedKeys(data: unknown, src: YamlSource): SourceError[] {
  const errors: SourceError[] = [];
  walk(data, COMPOSE_FILE, [], (path) => errors.push(errorAt(src, path, 'not supported by berth yet', { key: true })));
  return errors;
}

function walk(data: unknown, shape: Shape, path: Path, refuse: (path: Path) => void): void {
  if (typeof shape === 'boolean' || data === null || typeof data !== 'object') return;
  if (Array.isArray(data)) {
    const item = shape['[]'];
    if (item !== undefined) data.forEach((d, i) => walk(d, item, [...path, i], refuse));
    return;
  }
  for (const [key, value] of Object.entries(data)) {
    const sub = Object.hasOwn(shape, key) ? shape[key] : key.startsWith('x-') ? true : shape['*'];
    if (sub === undefined || sub === false) refuse([...path, key]);
    else walk(value, sub, [...path, key], refuse);
  }
}
