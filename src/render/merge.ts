/**
 * Merging a stack's Compose files in order, with Compose's rules: a later file's single values
 * replace earlier ones (`command`, `entrypoint` and `healthcheck.test` as a whole), maps
 * (`environment`, `labels`, `depends_on`, `networks`, healthcheck fields, top-level networks and
 * volumes) merge key by key, `ports` and `env_file` append without duplicates, and `volumes`
 * replace the mount at the same target. `deploy:` merges as mappings, its placement constraints and
 * preferences appended without duplicates (mergeDeploy). The long tail merges by each key's rule
 * (mergePass).
 */
import type { PortSpec, SourceError } from '../model.ts';
import { mergeBuild } from './build.ts';
import { mergeDeploy } from './deploy.ts';
import type { FileDefPart } from './files.ts';
import { mergeJob } from './job.ts';
import { mergePass } from './passthrough.ts';
import { siteError, type At } from './positions.ts';
import type { ComposeModel, ResourcePart, ServicePart } from './normalize.ts';

/** The stack's model: `models` merged in order (the first file's places win for where a thing is). */
export function mergeModels(models: readonly ComposeModel[]): ComposeModel {
  const out: ComposeModel = { services: new Map(), networks: new Map(), volumes: new Map(), secrets: new Map(), configs: new Map() };
  for (const m of models) {
    mergeInto(out.services, m.services, mergeService);
    mergeInto(out.networks, m.networks, mergeResource);
    mergeInto(out.volumes, m.volumes, mergeResource);
    mergeInto(out.secrets, m.secrets, replaceDef);
    mergeInto(out.configs, m.configs, replaceDef);
  }
  return out;
}

function mergeInto<T>(into: Map<string, T>, from: Map<string, T>, merge: (a: T, b: T) => T): void {
  for (const [key, value] of from) {
    const base = into.get(key);
    into.set(key, base === undefined ? value : merge(base, value));
  }
}

const union = <K, V>(a: Map<K, V>, b: Map<K, V>) => new Map([...a, ...b]);

/** Appends `over` to `base`; an entry with the same key replaces the earlier one in place. */
function mergeBy<T>(base: At<T>[], over: At<T>[], key: (v: T) => string): At<T>[] {
  const out = [...base];
  for (const item of over) {
    const i = out.findIndex((o) => key(o.value) === key(item.value));
    if (i >= 0) out[i] = item;
    else out.push(item);
  }
  return out;
}

const portKey = (p: PortSpec) => `${p.hostIp ?? ''}:${p.published ?? ''}:${p.target}/${p.protocol}`;

/** `over` merged onto `base` (the later file onto the earlier, or a service onto the one it extends). */
export function mergeService(base: ServicePart, over: ServicePart): ServicePart {
  let networks = base.networks ?? over.networks;
  if (base.networks && over.networks) {
    networks = union(base.networks, over.networks);
    // an attachment merges as a mapping: aliases appended, an address of the later file replaces the earlier one
    for (const [key, entry] of over.networks) {
      const before = base.networks.get(key)?.value ?? { aliases: [] };
      const value = { ...before, ...definedFields(entry.value), aliases: [...new Set([...before.aliases, ...entry.value.aliases])] };
      networks.set(key, { ...entry, value });
    }
  }
  return {
    ...base,
    ...definedFields(over),
    name: base.name,
    at: base.at,
    environment: union(base.environment, over.environment),
    envFiles: mergeBy(base.envFiles, over.envFiles, (e) => e.path),
    ports: mergeBy(base.ports, over.ports, portKey),
    volumes: mergeBy(base.volumes, over.volumes, (v) => v.target),
    networks,
    labels: union(base.labels, over.labels),
    healthcheck: base.healthcheck || over.healthcheck ? { ...base.healthcheck, ...over.healthcheck } : undefined,
    deploy: mergeDeploy(base.deploy, over.deploy),
    dependsOn: union(base.dependsOn, over.dependsOn),
    build: mergeBuild(base.build, over.build),
    secrets: mergeBy(base.secrets, over.secrets, (r) => r.source),
    configs: mergeBy(base.configs, over.configs, (r) => r.source),
    job: mergeJob(base.job, over.job),
    pass: mergePass(base.pass, over.pass),
  };
}

/** A later file's secret or config definition replaces the earlier one (its source is one thing). */
function replaceDef(_base: FileDefPart, over: FileDefPart): FileDefPart {
  return over;
}

function mergeResource(base: ResourcePart, over: ResourcePart): ResourcePart {
  // `ipam` merges as a mapping (driver and options replaced, config as a whole), as Compose does
  const ipam =
    base.ipam && over.ipam
      ? { ...base.ipam, ...definedFields(over.ipam), config: over.ipam.config.length ? over.ipam.config : base.ipam.config }
      : (over.ipam ?? base.ipam);
  return { ...base, ...definedFields(over), key: base.key, at: base.at, labels: union(base.labels, over.labels), ...(ipam ? { ipam } : {}) };
}

/** The fields of `o` that are set (so that spreading it does not erase earlier values). */
function definedFields<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Adds the included models to `model`. Services may come from one place only; networks and
 * volumes the including file declares itself keep its declaration.
 */
export function joinIncluded(model: ComposeModel, included: ComposeModel[], errors: SourceError[]): void {
  const own = new Set(model.services.keys());
  for (const inc of included) {
    for (const [name, part] of inc.services) {
      const other = model.services.get(name);
      if (!other) {
        model.services.set(name, part);
        continue;
      }
      const [here, there] = own.has(name) ? [other.at, part.at] : [part.at, other.at];
      errors.push(
        siteError(here, `service '${name}' is also defined by ${there.file}:${there.line}:${there.col} (included): a service can be defined in one place only`),
      );
    }
    for (const kind of ['networks', 'volumes'] as const) {
      for (const [key, r] of inc[kind]) if (!model[kind].has(key)) model[kind].set(key, r);
    }
  }
}
