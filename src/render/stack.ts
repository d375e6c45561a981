/**
 * Rendering one stack: each Compose file is parsed, interpolated (variables from the `.env` next
 * to the first file), validated against the Compose schema and berth's rules, normalised; then the
 * files are merged and the result checked as a whole and turned into berth's RenderedStack.
 */
import { posix } from 'node:path';
import { visit } from 'yaml';
import type { ContextFile, FileSpec, InputLimits, NetworkSpec, RenderOptions, ServiceSpec, SourceError, StackDef, StackRender, VolumeSpec } from '../model.ts';
import { resolveBuild } from './build.ts';
import { deploySpec } from './deploy.ts';
import { resolveFiles } from './files.ts';
import { parseDotenv } from './dotenv.ts';
import { resolveExtends } from './extends.ts';
import { interpolateDocument, type Lookup } from './interpolate.ts';
import { completionErrors, jobSpec } from './jobspec.ts';
import { joinIncluded, mergeModels } from './merge.ts';
import { normalizeFile, type ComposeModel, type NetworkJoin, type ResourcePart, type ServicePart } from './normalize.ts';
import { passFields, passSite, passValue } from './passthrough.ts';
import { nameListed, policyErrors, STRICT_POLICY } from './policy.ts';
import { containersOf, limitsOf, yamlSizeError } from './limits.ts';
import { decode, parseYaml, siteError, type At } from './positions.ts';
import { inSubnet, parseCidr } from './values.ts';
import { unsupportedKeys } from './rules.ts';
import { closest, validateCompose } from './validate.ts';

type Files = ReadonlyMap<string, Uint8Array>;

/** What a stack is rendered from besides its definition: the snapshot's files and modes, and the engine's sources. */
export interface StackInputs {
  files: Files;
  /** the names of every stack the repo defines (whose `<stack>_...` networks and volumes it may name); default: this one */
  stacks?: () => readonly string[];
  modes?: ReadonlyMap<string, number>;
  options?: RenderOptions;
}

/** Renders one stack of a snapshot; its errors stay in its own result. */
export function renderStack(def: StackDef, inputs: StackInputs): StackRender {
  const { files, options = {} } = inputs;
  const errors: SourceError[] = [];
  const envPath = posix.join(posix.dirname(def.composeFiles[0] ?? '.'), '.env');
  const vars = readDotenv(envPath, files, () => undefined, errors) ?? new Map<string, string>();
  const lookup: Lookup = (name) => vars.get(name);
  const limits = limitsOf(options);
  const models: ComposeModel[] = [];
  for (const file of def.composeFiles) {
    const model = loadTree(file, files, lookup, def.name, [], errors, limits);
    if (model) models.push(model);
  }
  if (errors.length === 0) {
    const { model, disabled } = withProfiles(mergeModels(models), def.profiles ?? []);
    const policy = options.policy ?? STRICT_POLICY;
    for (const s of model.services.values()) errors.push(...policyErrors(s, policy));
    const stack = assemble(def, model, disabled, inputs, lookup, errors, limits);
    const containers = containersOf(stack, options.hosts);
    if (errors.length === 0 && containers > limits.stackContainers) {
      // located at the service asking for the most: the one to look at first
      const counts = stack.services.map((s) => ({ s, n: containersOf({ ...stack, services: [s] }, options.hosts) }));
      const most = counts.reduce((a, b) => (b.n > a.n ? b : a)).s.name;
      const part = model.services.get(most);
      const at = part?.deploy.replicas?.at ?? part?.at;
      const message = `the stack asks for ${containers} containers, over limits.stackContainers (${limits.stackContainers}) of the engine config`;
      errors.push(at ? siteError(at, message) : { file: def.composeFiles[0] ?? '', line: 0, col: 0, message });
    }
    if (errors.length === 0) return { def, ok: true, stack };
  }
  return { def, ok: false, errors: unique(errors) };
}

/**
 * A stack file with what it pulls in: its `extends:` resolved (other files read with the same
 * variables) and its `include:`d files (each with its own variables) joined in.
 */
function loadTree(
  file: string,
  files: Files,
  lookup: Lookup,
  stack: string | undefined,
  chain: string[],
  errors: SourceError[],
  limits: InputLimits,
): ComposeModel | undefined {
  const model = loadComposeFile(file, files, lookup, stack, errors, limits);
  if (!model) return undefined;
  const others = new Map<string, ComposeModel | undefined>();
  resolveExtends(
    model,
    file,
    (other) => {
      if (!files.has(other)) return 'missing';
      if (!others.has(other)) others.set(other, loadComposeFile(other, files, lookup, undefined, errors, limits));
      return others.get(other);
    },
    errors,
  );
  const included: ComposeModel[] = [];
  for (const { value: ref, at } of model.includes ?? []) {
    const missing = [...ref.envFiles, ...ref.paths].find((p) => !files.has(p));
    if (missing) {
      errors.push(siteError(at, `${missing} does not exist in the repository`));
      continue;
    }
    const cycle = ref.paths.find((p) => p === file || chain.includes(p));
    if (cycle) {
      errors.push(siteError(at, `include cycle: ${[...chain, file, cycle].join(' -> ')}`));
      continue;
    }
    const vars = new Map<string, string>();
    for (const envFile of ref.envFiles.length ? ref.envFiles : [posix.join(ref.projectDir, '.env')]) {
      for (const [k, v] of readDotenv(envFile, files, () => undefined, errors) ?? []) vars.set(k, v);
    }
    const parts = ref.paths.map((p) => loadTree(p, files, (name) => vars.get(name), undefined, [...chain, file], errors, limits));
    if (parts.every((p) => p !== undefined)) included.push(mergeModels(parts as ComposeModel[]));
  }
  joinIncluded(model, included, errors);
  return model;
}

/** The model without the services whose profiles are all inactive (their names in `disabled`). */
function withProfiles(model: ComposeModel, active: string[]): { model: ComposeModel; disabled: Map<string, string[]> } {
  const disabled = new Map<string, string[]>();
  for (const [name, s] of model.services) {
    const profiles = passValue<string[]>(s.pass, 'profiles') ?? [];
    if (profiles.length > 0 && !profiles.some((p) => active.includes(p))) disabled.set(name, profiles);
  }
  const services = new Map([...model.services].filter(([name]) => !disabled.has(name)));
  return { model: { ...model, services }, disabled };
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

/** One Compose file through parse, interpolation, schema, berth's rules and normalisation (`stack`: see normalizeFile). */
function loadComposeFile(
  file: string,
  files: Files,
  lookup: Lookup,
  stack: string | undefined,
  errors: SourceError[],
  limits: InputLimits,
): ComposeModel | undefined {
  const bytes = files.get(file);
  if (!bytes) return void errors.push({ file, line: 0, col: 0, message: 'no such file in the repository' });
  const tooBig = yamlSizeError(file, bytes.byteLength, limits);
  if (tooBig) return void errors.push(tooBig);
  const decoded = decode(file, bytes);
  if ('error' in decoded) return void errors.push(decoded.error);
  const { source, errors: syntax } = parseYaml(file, decoded.text);
  if (syntax.length) return void errors.push(...syntax);
  const interpolation = interpolateDocument(source, lookup);
  if (interpolation.length) return void errors.push(...interpolation);
  let data: unknown;
  try {
    // the yaml package counts what aliases expand to and throws past the count: a "billion laughs" stops here, early
    data = source.doc.toJS({ maxAliasCount: limits.yamlAliases });
  } catch (e) {
    // located at the first alias that does not resolve, else at the first alias: where the expansion starts
    let first: number | undefined;
    let unresolved: number | undefined;
    visit(source.doc, {
      Alias(_, node) {
        first ??= node.range?.[0];
        if (unresolved === undefined && !node.resolve(source.doc)) unresolved = node.range?.[0] ?? -1;
      },
    });
    const at = unresolved ?? first;
    const pos = at === undefined || at < 0 ? { line: 0, col: 0 } : source.lines.linePos(at);
    const why =
      e instanceof ReferenceError && unresolved === undefined
        ? `its aliases expand to more than limits.yamlAliases (${limits.yamlAliases}) allows of the engine config`
        : (e as Error).message;
    return void errors.push({ file, ...pos, message: why });
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
function assemble(
  def: StackDef,
  model: ComposeModel,
  disabled: Map<string, string[]>,
  inputs: StackInputs,
  lookup: Lookup,
  errors: SourceError[],
  limits: InputLimits,
) {
  const { files } = inputs;
  const contents = new Map<string, Uint8Array>();
  const contexts = new Map<string, ContextFile[]>();
  const envFiles = new Map<string, Map<string, string>>();
  const readEnvFile = (path: string) => {
    if (!envFiles.has(path)) envFiles.set(path, readDotenv(path, files, lookup, errors) ?? new Map());
    return envFiles.get(path) as Map<string, string>;
  };
  let usesDefault = false;
  const addresses = new Map<string, string>();
  const services = new Map<string, ServiceSpec>();
  const parts: ServicePart[] = [];
  for (let s of model.services.values()) {
    if (!s.image && !s.build) errors.push(siteError(s.at, 'needs image: or build:'));
    const built = s.build && resolveBuild(s.build, files, inputs.modes, errors, limits.buildContext);
    if (built) contexts.set(s.name, built.context);
    const environment = new Map<string, string>();
    for (const { value: ref, at } of s.envFiles) {
      if (files.has(ref.path)) for (const [k, v] of readEnvFile(ref.path)) environment.set(k, v);
      else if (ref.required) errors.push(siteError(at, `${ref.path} does not exist in the repository`));
    }
    for (const [k, v] of s.environment) environment.set(k, v);
    s = withNetworkMode(s, model, disabled, errors);
    parts.push(s);
    const networks: Map<string, At<NetworkJoin>> = passValue(s.pass, 'network_mode') !== undefined
      ? new Map()
      : (s.networks ?? new Map([['default', { value: { aliases: [] }, at: s.at }]]));
    for (const [key, { at }] of networks) {
      if (key === 'default') usesDefault = true;
      else if (!model.networks.has(key)) errors.push(siteError(at, `network '${key}' is not declared under the top-level networks:`));
    }
    const repoFiles = s.volumes
      .filter((v) => v.value.repoPath !== undefined)
      .map(({ value: m, at }) => ({ value: { path: m.repoPath as string, target: m.target }, at }));
    const delivered = resolveFiles(
      { secret: s.secrets, config: s.configs, repo: repoFiles },
      { secret: model.secrets, config: model.configs },
      inputs,
      contents,
      errors,
    );
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
      if (disabled.has(dep)) {
        errors.push(siteError(at, notDeployed(dep, disabled)));
        continue;
      }
      const hint = closest(dep, [...model.services.keys()]);
      errors.push(siteError(at, `'${dep}' is not a service of this stack${hint ? ` (did you mean '${hint}'?)` : ''}`));
    }
    const mounted = new Set(s.volumes.filter((v) => v.value.repoPath === undefined).map((v) => v.value.target));
    for (const f of delivered) {
      if (mounted.has(f.target)) errors.push(siteError(s.at, `${f.target} is both a mount target and where ${f.kind} ${f.source} goes`));
    }
    const spec = serviceSpec(s, environment, networks, errors, limits);
    fixedAddresses(s.name, spec, networks, model, addresses, errors);
    spec.files = delivered;
    // Docker copies into a read-only root file system only into a volume mounted there
    const inVolume = (target: string) => spec.volumes.some((m) => m.type === 'volume' && (target + '/').startsWith(m.target.replace(/\/?$/, '/')));
    const stuck = spec.extras?.hostConfig.ReadonlyRootfs === true ? delivered.find((f) => !inVolume(f.target)) : undefined;
    if (stuck)
      errors.push(
        siteError(
          passSite(s.pass, 'read_only') ?? s.at,
          `${stuck.kind} ${stuck.source} cannot be written to ${stuck.target} on a read-only root file system: put it under a volume mounted there, or drop read_only`,
        ),
      );
    if (built) spec.build = built.spec;
    if (built && !s.image) spec.image = `${def.name}-${s.name}`; // Compose's name for an image it builds
    services.set(s.name, spec);
  }
  errors.push(...completionErrors(model.services));
  const order = startOrder(parts, errors);
  const reach = (kind: 'network' | 'volume') => (r: ResourcePart) => reachOf(def.name, kind, r, resourceSpec(def.name, r), inputs, errors);
  const networks: NetworkSpec[] = [...model.networks.values()].map(reach('network'));
  if (usesDefault && !model.networks.has('default')) {
    networks.unshift(resourceSpec(def.name, { key: 'default', at: { file: '', line: 0, col: 0, path: '' }, labels: new Map() }));
  }
  const volumes: VolumeSpec[] = [...model.volumes.values()].map(reach('volume'));
  return { ...def, services: order.map((name) => services.get(name) as ServiceSpec), networks, volumes, contents, contexts };
}

const sorted = (m: Map<string, string>): Record<string, string> => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

function serviceSpec(
  s: ServicePart,
  environment: Map<string, string>,
  networks: Map<string, { value: NetworkJoin }>,
  errors: SourceError[],
  limits: InputLimits,
): ServiceSpec {
  const spec: ServiceSpec = {
    name: s.name,
    image: s.image?.value ?? '',
    environment: sorted(environment),
    ports: s.ports.map((p) => p.value),
    volumes: s.volumes.filter((v) => v.value.repoPath === undefined).map((v) => v.value),
    networks: [...networks].map(([key, { value }]) => serviceNetwork(key, value)),
    labels: sorted(s.labels),
    restart: s.restart ?? 'no',
    ...deploySpec(s.deploy, errors, limits.replicas),
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
    if (many)
      errors.push(
        siteError(
          s.containerName.at,
          `'${s.containerName.value}' can name one container, but deploy.replicas is ${spec.replicas}: drop container_name or use one replica`,
        ),
      );
    else spec.containerName = s.containerName.value;
  }
  const published = s.ports.find((p) => p.value.published !== undefined);
  for (const [key, config] of [
    ['update_config', spec.update],
    ['rollback_config', spec.rollback],
  ] as const) {
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
  const watch = s.job.watchImage;
  if (watch?.value) {
    // only an image a registry serves under a tag can be followed
    const why = s.build
      ? 'berth builds this service: there is no registry tag to follow'
      : /@sha256:/.test(spec.image)
        ? 'the image is pinned by digest as written: there is no tag to follow'
        : spec.pullPolicy === 'never'
          ? "pull_policy: never runs the host's own image: there is no registry tag to follow"
          : undefined;
    if (why) errors.push(siteError(watch.at, why));
    else spec.watchImage = true;
  }
  return Object.assign(spec, passFields(s.pass, s.deploy, spec, errors));
}

/** A service's attachment to one network as the spec has it (the addresses only when set, so that a spec without them hashes as before). */
function serviceNetwork(key: string, join: NetworkJoin): ServiceSpec['networks'][number] {
  return {
    key,
    aliases: join.aliases,
    ...(join.ipv4Address ? { ipv4Address: join.ipv4Address.value } : {}),
    ...(join.ipv6Address ? { ipv6Address: join.ipv6Address.value } : {}),
    ...(join.linkLocalIps?.length ? { linkLocalIps: join.linkLocalIps } : {}),
  };
}

/**
 * A fixed address (`ipv4_address`, `ipv6_address`) is one container's on its network, as with
 * Compose: so one replica only, never two at once (not with order: start-first, where the old and
 * the new replica run together), on a network with a configured subnet that holds it (Docker
 * takes an address from the caller only there), and no other service's. Each refusal is at the key.
 * `taken`: the addresses of the services checked before, `network/address` -> service.
 */
function fixedAddresses(
  service: string,
  spec: ServiceSpec,
  networks: Map<string, At<NetworkJoin>>,
  model: ComposeModel,
  taken: Map<string, string>,
  errors: SourceError[],
): void {
  for (const [key, { value: join }] of networks) {
    for (const [fixed, family] of [
      [join.ipv4Address, 'ipv4'],
      [join.ipv6Address, 'ipv6'],
    ] as const) {
      if (!fixed) continue;
      const fail = (message: string) => errors.push(siteError(fixed.at, message));
      if (spec.mode === 'global') {
        fail("a fixed address is one container's, but deploy.mode: global runs one on each host: drop the address, or run one replica");
      } else if (spec.replicas > 1) {
        fail(`a fixed address is one container's, but the service asks for ${spec.replicas} replicas: use one replica, or drop the address`);
      }
      for (const [name, config] of [
        ['update_config', spec.update],
        ['rollback_config', spec.rollback],
      ] as const) {
        if (config.order === 'start-first') {
          fail(
            `cannot be used with deploy.${name}.order: start-first: the old and the new replica would need the address at once (use stop-first, the default)`,
          );
        }
      }
      const network = model.networks.get(key);
      if (!network?.external) {
        const subnets = (network?.ipam?.config ?? []).flatMap((c) => (c.value.subnet && parseCidr(c.value.subnet)?.family === family ? [c.value.subnet] : []));
        if (subnets.length === 0) {
          fail(
            `network '${key}' has no ${family === 'ipv4' ? 'IPv4' : 'IPv6'} subnet: Docker gives a fixed address only on a network with a configured subnet (declare it under networks.${key}.ipam.config)`,
          );
        } else if (!subnets.some((net) => inSubnet(fixed.value, net))) {
          fail(`${fixed.value} is not in the subnet of network '${key}' (${subnets.join(', ')})`);
        }
      }
      const other = taken.get(`${key}/${fixed.value}`);
      if (other !== undefined) fail(`${fixed.value} is already the address of service '${other}' on network '${key}'`);
      else taken.set(`${key}/${fixed.value}`, service);
    }
  }
}

const notDeployed = (name: string, disabled: Map<string, string[]>) =>
  `'${name}' is not deployed: none of its profiles (${disabled.get(name)!.join(', ')}) is active for this stack (profiles: in berth.yaml)`;

/** Keys Docker refuses next to a network mode that takes another container's network (or, for mac_address, the host's). */
const OWN_NETWORK_KEYS = ['hostname', 'domainname', 'dns', 'dns_search', 'dns_opt', 'extra_hosts', 'mac_address', 'expose'];

/**
 * Checks `network_mode` against the rest of the service, as Compose and Docker do; for
 * `service:NAME`, the service starts after NAME (it comes back with that dependency added).
 */
function withNetworkMode(s: ServicePart, model: ComposeModel, disabled: Map<string, string[]>, errors: SourceError[]): ServicePart {
  const mode = passValue<string>(s.pass, 'network_mode');
  const at = passSite(s.pass, 'network_mode');
  if (mode === undefined || at === undefined) return s;
  const fail = (message: string) => errors.push(siteError(at, message));
  if (s.networks) fail('cannot be used together with networks: (with a network_mode the service joins no stack network)');
  if (mode === 'bridge') return s;
  for (const p of s.ports) {
    errors.push(
      siteError(
        p.at,
        `ports cannot be published with network_mode: ${mode} (${mode === 'host' ? "the service's ports are the host's already" : 'the container has no network of its own to publish from'})`,
      ),
    );
  }
  const shared = mode.startsWith('service:') || mode.startsWith('container:');
  for (const key of OWN_NETWORK_KEYS.filter((k) => shared || (mode === 'host' && k === 'mac_address'))) {
    const site = passSite(s.pass, key);
    if (site) errors.push(siteError(site, `cannot be used with network_mode: ${mode} (the network is ${shared ? "another container's" : "the host's"})`));
  }
  if (mode !== 'none' && (s.deploy.update.order === 'start-first' || s.deploy.rollback.order === 'start-first')) {
    fail(`cannot be used with order: start-first (the old and the new replica would share one network, and its ports)`);
  }
  if (!mode.startsWith('service:')) return s;
  const peer = mode.slice('service:'.length);
  if (peer === s.name) fail('a service cannot share its own network');
  else if (disabled.has(peer)) fail(notDeployed(peer, disabled));
  else if (!model.services.has(peer)) {
    const hint = closest(peer, [...model.services.keys()]);
    fail(`'${peer}' is not a service of this stack${hint ? ` (did you mean '${hint}'?)` : ''}`);
  } else if (!s.dependsOn.has(peer)) {
    return { ...s, dependsOn: new Map([...s.dependsOn, [peer, { value: 'service_started' as const, at }]]) };
  }
  return s;
}

/**
 * A network or volume with a name of its own (`name:` or `external: true`) may reach only what
 * belongs to the repo's own stacks (`<stack>_...`, one of the stacks the repo defines), or a name
 * its policy lists (policy.externalNetworks, policy.externalVolumes); the owner labels of what exists
 * on the hosts are checked again when the stack is planned (src/diff/plan.ts). An external network
 * `host`, `none` or `bridge` is a network mode.
 */
function reachOf(
  stack: string,
  kind: 'network' | 'volume',
  r: ResourcePart,
  spec: NetworkSpec & VolumeSpec,
  inputs: StackInputs,
  errors: SourceError[],
): NetworkSpec & VolumeSpec {
  if (r.name === undefined && !r.external) return spec;
  const policy = inputs.options?.policy ?? STRICT_POLICY;
  if (kind === 'network' && spec.external && ['host', 'none', 'bridge'].includes(spec.name)) {
    errors.push(siteError(r.at, `the network ${spec.name} is Docker's own: use network_mode: ${spec.name} on the services instead`));
    return spec;
  }
  if (nameListed(spec.name, kind === 'network' ? policy.externalNetworks : policy.externalVolumes)) return { ...spec, reach: 'policy' };
  if ((inputs.stacks?.() ?? [stack]).some((st) => spec.name.startsWith(`${st}_`))) return { ...spec, reach: 'repo' };
  const setting = kind === 'network' ? 'policy.externalNetworks' : 'policy.externalVolumes';
  errors.push(
    siteError(
      r.at,
      `the ${kind} ${spec.name} is not one of this repo's stacks' (<stack>_...): reaching it is not allowed for this repo: allow it with ${setting}: ["${spec.name}"] on the repo in berth's config`,
    ),
  );
  return spec;
}

function resourceSpec(stack: string, r: ResourcePart): NetworkSpec & VolumeSpec {
  const external = r.external ?? false;
  const spec: NetworkSpec = { key: r.key, name: r.name ?? (external ? r.key : `${stack}_${r.key}`), external, labels: sorted(r.labels) };
  if (r.driver !== undefined) spec.driver = r.driver;
  if (r.ipam) {
    spec.ipam = { config: r.ipam.config.map((c) => c.value) };
    if (r.ipam.driver !== undefined) spec.ipam.driver = r.ipam.driver;
    if (r.ipam.options !== undefined) spec.ipam.options = r.ipam.options;
  }
  if (r.enableIpv6 !== undefined) spec.enableIpv6 = r.enableIpv6;
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
