/**
 * Rendering one stack: each Compose file is parsed, interpolated (variables from the `.env` next
 * to the first file), validated against the Compose schema and berth's rules, normalised; then the
 * files are merged and the result checked as a whole and turned into berth's RenderedStack.
 */
import { posix } from 'node:path';
import type { ContextFile, FileSpec, NetworkSpec, RenderOptions, ServiceSpec, SourceError, StackDef, StackRender, VolumeSpec } from '../model.ts';
import { resolveBuild } from './build.ts';
import { deploySpec } from './deploy.ts';
import { resolveFiles } from './files.ts';
import { parseDotenv } from './dotenv.ts';
import { interpolateDocument, type Lookup } from './interpolate.ts';
import { completionErrors, jobSpec } from './job.ts';
import { mergeModels } from './merge.ts';
import { normalizeFile, type ComposeModel, type ResourcePart, type ServicePart } from './normalize.ts';
import { decode, parseYaml, siteError } from './positions.ts';
import { unsupportedKeys } from './rules.ts';
import { closest, validateCompose } from './validate.ts';

type Files = ReadonlyMap<string, Uint8Array>;

/** What a stack is rendered from besides its definition: the snapshot's files and modes, and the engine's sources. */
export interface StackInputs {
  files: Files;
  modes?: ReadonlyMap<string, number>;
  options?: RenderOptions;
}

/** Renders one stack of a snapshot; its errors stay in its own result. */
export function renderStack(def: StackDef, inputs: StackInputs): StackRender {
  const { files } = inputs;
  const errors: SourceError[] = [];
  const envPath = posix.join(posix.dirname(def.composeFiles[0] ?? '.'), '.env');
  const vars = readDotenv(envPath, files, () => undefined, errors) ?? new Map<string, string>();
  const lookup: Lookup = (name) => vars.get(name);
  const models: ComposeModel[] = [];
  for (const file of def.composeFiles) {
    const model = loadComposeFile(file, files, lookup, def.name, errors);
    if (model) models.push(model);
  }
  if (errors.length === 0) {
    const stack = assemble(def, mergeModels(models), inputs, lookup, errors);
    if (errors.length === 0) return { def, ok: true, stack };
  }
  return { def, ok: false, errors: unique(errors) };
}

function unique(errors: SourceError[]): SourceError[] {
  const seen = new Set<string>();
  return errors.filter((e) => {
    const id = `${e.file}:${e.line}:${e.col}:${e.message}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Reads a dotenv file; undefined (and no error) when it does not exist. */
function readDotenv(path: string, files: Files, lookup: Lookup, errors: SourceError[]): Map<string, string> | undefined {
  const bytes = files.get(path);
  if (!bytes) return undefined;
  const decoded = decode(path, bytes);
  if ('error' in decoded) {
    errors.push(decoded.error);
    return new Map();
  }
  const parsed = parseDotenv(decoded.text, lookup);
  errors.push(...parsed.errors.map((e) => ({ file: path, ...e })));
  return parsed.vars;
}

/** One Compose file through parse, interpolation, schema, berth's rules and normalisation. */
function loadComposeFile(file: string, files: Files, lookup: Lookup, stack: string, errors: SourceError[]): ComposeModel | undefined {
  const bytes = files.get(file);
  if (!bytes) return void errors.push({ file, line: 0, col: 0, message: 'no such file in the repository' });
  const decoded = decode(file, bytes);
  if ('error' in decoded) return void errors.push(decoded.error);
  const { source, errors: syntax } = parseYaml(file, decoded.text);
  if (syntax.length) return void errors.push(...syntax);
  const interpolation = interpolateDocument(source, lookup);
  if (interpolation.length) return void errors.push(...interpolation);
  let data: unknown;
  try {
    data = source.doc.toJS({ maxAliasCount: 10000 });
  } catch (e) {
    return void errors.push({ file, line: 0, col: 0, message: (e as Error).message });
  }
  // keys berth does not honour are reported along with schema errors; values are read only from a valid file
  const schema = validateCompose(data, source);
  const flagged = new Set(schema.map((e) => `${e.line}:${e.col}`)); // an unknown key is not also "not supported"
  const found = [...schema, ...unsupportedKeys(data, source).filter((e) => !flagged.has(`${e.line}:${e.col}`))];
  const normalized = found.length === 0 ? normalizeFile(source, data, stack) : undefined;
  errors.push(...[...found, ...(normalized?.errors ?? [])].sort((a, b) => a.line - b.line || a.col - b.col));
  return normalized?.model;
}

/** Checks the merged model as a whole and builds the rendered stack. */
function assemble(def: StackDef, model: ComposeModel, inputs: StackInputs, lookup: Lookup, errors: SourceError[]) {
  const { files } = inputs;
  const contents = new Map<string, Uint8Array>();
  const contexts = new Map<string, ContextFile[]>();
  const envFiles = new Map<string, Map<string, string>>();
  const readEnvFile = (path: string) => {
    if (!envFiles.has(path)) envFiles.set(path, readDotenv(path, files, lookup, errors) ?? new Map());
    return envFiles.get(path) as Map<string, string>;
  };
  let usesDefault = false;
  const services = new Map<string, ServiceSpec>();
  for (const s of model.services.values()) {
    if (!s.image && !s.build) errors.push(siteError(s.at, 'needs image: or build:'));
    const built = s.build && resolveBuild(s.build, files, inputs.modes, errors);
    if (built) contexts.set(s.name, built.context);
    const environment = new Map<string, string>();
    for (const { value: ref, at } of s.envFiles) {
      if (files.has(ref.path)) for (const [k, v] of readEnvFile(ref.path)) environment.set(k, v);
      else if (ref.required) errors.push(siteError(at, `${ref.path} does not exist in the repository`));
    }
    for (const [k, v] of s.environment) environment.set(k, v);
    const networks = s.networks ?? new Map([['default', { value: [], at: s.at }]]);
    for (const [key, { at }] of networks) {
      if (key === 'default') usesDefault = true;
      else if (!model.networks.has(key)) errors.push(siteError(at, `network '${key}' is not declared under the top-level networks:`));
    }
    const repoFiles = s.volumes.filter((v) => v.value.repoPath !== undefined).map(({ value: m, at }) => ({ value: { path: m.repoPath as string, target: m.target }, at }));
    const delivered = resolveFiles({ secret: s.secrets, config: s.configs, repo: repoFiles }, { secret: model.secrets, config: model.configs }, { files, modes: inputs.modes, options: inputs.options ?? {} }, contents, errors);
    const targets = new Set<string>();
    for (const { value: m, at } of s.volumes) {
      if (m.type === 'volume' && m.source !== undefined && !model.volumes.has(m.source)) {
        errors.push(siteError(at, `volume '${m.source}' is not declared under the top-level volumes:`));
      }
      if (targets.has(m.target)) errors.push(siteError(at, `another mount already uses the target ${m.target}`));
      targets.add(m.target);
    }
    for (const [dep, { at }] of s.dependsOn) {
      if (model.services.has(dep)) continue;
      const hint = closest(dep, [...model.services.keys()]);
      errors.push(siteError(at, `'${dep}' is not a service of this stack${hint ? ` (did you mean '${hint}'?)` : ''}`));
    }
    const mounted = new Set(s.volumes.filter((v) => v.value.repoPath === undefined).map((v) => v.value.target));
    for (const f of delivered) {
      if (mounted.has(f.target)) errors.push(siteError(s.at, `${f.target} is both a mount target and where ${f.kind} ${f.source} goes`));
    }
    const spec = serviceSpec(s, environment, networks, errors);
    spec.files = delivered;
    if (built) spec.build = built.spec;
    if (built && !s.image) spec.image = `${def.name}-${s.name}`; // Compose's name for an image it builds
    services.set(s.name, spec);
  }
  errors.push(...completionErrors(model.services));
  const order = startOrder([...model.services.values()], errors);
  const networks: NetworkSpec[] = [...model.networks.values()].map((r) => resourceSpec(def.name, r));
  if (usesDefault && !model.networks.has('default')) {
    networks.unshift(resourceSpec(def.name, { key: 'default', at: { file: '', line: 0, col: 0, path: '' }, labels: new Map() }));
  }
  const volumes: VolumeSpec[] = [...model.volumes.values()].map((r) => resourceSpec(def.name, r));
  return { ...def, services: order.map((name) => services.get(name) as ServiceSpec), networks, volumes, contents, contexts };
}

const sorted = (m: Map<string, string>): Record<string, string> => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

function serviceSpec(s: ServicePart, environment: Map<string, string>, networks: Map<string, { value: string[] }>, errors: SourceError[]): ServiceSpec {
  const spec: ServiceSpec = {
    name: s.name,
    image: s.image?.value ?? '',
    environment: sorted(environment),
    ports: s.ports.map((p) => p.value),
    volumes: s.volumes.filter((v) => v.value.repoPath === undefined).map((v) => v.value),
    networks: [...networks].map(([key, { value }]) => ({ key, aliases: value })),
    labels: sorted(s.labels),
    restart: s.restart ?? 'no',
    ...deploySpec(s.deploy, errors),
    dependsOn: [...s.dependsOn].map(([service, { value }]) => ({ service, condition: value })),
    pullPolicy: s.pullPolicy?.value ?? (s.build && !s.image ? 'build' : 'missing'),
    files: [] as FileSpec[],
  };
  if (s.pullPolicy?.value === 'build' && !s.build) errors.push(siteError(s.pullPolicy.at, 'build needs a build: section'));
  if (s.pullPolicy && s.pullPolicy.value !== 'build' && s.build && !s.image) {
    errors.push(siteError(s.pullPolicy.at, `${s.pullPolicy.value} needs image: to name what to pull or use`));
  }
  if (s.containerName) {
    const many = spec.mode === 'replicated' && spec.replicas > 1;
    if (many) errors.push(siteError(s.containerName.at, `'${s.containerName.value}' can name one container, but deploy.replicas is ${spec.replicas}: drop container_name or use one replica`));
    else spec.containerName = s.containerName.value;
  }
  const published = s.ports.find((p) => p.value.published !== undefined);
  for (const [key, config] of [['update_config', spec.update], ['rollback_config', spec.rollback]] as const) {
    if (published && config.order === 'start-first') {
      const why = `host port ${published.value.published} cannot be published with deploy.${key}.order: start-first: the old and the new replica would need it at once on the same host (use stop-first, or publish no fixed host port)`;
      errors.push(siteError(published.at, why));
    }
  }
  if (s.command) spec.command = s.command;
  if (s.entrypoint) spec.entrypoint = s.entrypoint;
  // a healthcheck without a test keeps the image's own test (Docker's empty Test)
  if (s.healthcheck) spec.healthcheck = { test: [], ...s.healthcheck };
  if (s.user !== undefined) spec.user = s.user;
  if (s.workingDir !== undefined) spec.workingDir = s.workingDir;
  if (s.stopGracePeriodSeconds !== undefined) spec.stopGracePeriodSeconds = s.stopGracePeriodSeconds;
  if (s.stopSignal !== undefined) spec.stopSignal = s.stopSignal;
  const job = jobSpec(s, errors);
  if (job) spec.job = job;
  return spec;
}

function resourceSpec(stack: string, r: ResourcePart): NetworkSpec & VolumeSpec {
  const external = r.external ?? false;
  const spec: NetworkSpec = { key: r.key, name: r.name ?? (external ? r.key : `${stack}_${r.key}`), external, labels: sorted(r.labels) };
  if (r.driver !== undefined) spec.driver = r.driver;
  return spec;
}

/**
 * Service names in start order: each after the services it depends on, otherwise in file order.
 * A dependency cycle is an error (and the services in it come last).
 */
function startOrder(services: ServicePart[], errors: SourceError[]): string[] {
  const known = new Set(services.map((s) => s.name));
  const deps = (s: ServicePart) => [...s.dependsOn.keys()].filter((d) => known.has(d));
  const placed = new Set<string>();
  while (placed.size < services.length) {
    const next = services.find((s) => !placed.has(s.name) && deps(s).every((d) => placed.has(d)));
    if (next) {
      placed.add(next.name);
      continue;
    }
    // every service left waits on another one left: walk the first dependencies until one repeats
    const byName = new Map(services.map((s) => [s.name, s]));
    const path: ServicePart[] = [];
    let s = services.find((x) => !placed.has(x.name)) as ServicePart;
    while (!path.includes(s)) {
      path.push(s);
      s = byName.get(deps(s).find((d) => !placed.has(d)) as string) as ServicePart;
    }
    const cycle = [...path.slice(path.indexOf(s)), s];
    const at = cycle[0].dependsOn.get(cycle[1].name)?.at ?? cycle[0].at;
    errors.push(siteError(at, `dependency cycle: ${cycle.map((c) => c.name).join(' -> ')}`));
    for (const x of services) placed.add(x.name);
  }
  return [...placed];
}
