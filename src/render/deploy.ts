/**
 * A service's `deploy:` with Swarm's meaning: read from one file (every value checked and located),
 * then, once the stack's files are merged, turned into ServiceSpec's fields with Compose's defaults.
 */
import type { Placement, PlacementConstraint, Resources, ServiceSpec, SourceError, UpdateConfig } from '../model.ts';
import { siteError, siteOf, type At, type Path, type YamlSource } from './positions.ts';
import { badDuration, obj, parseBytes, parseDuration, scalarText, toInt, toNumber, type Obj } from './values.ts';

/** One file's `deploy:` (after merging, the stack's). Absent fields were not set. */
export interface DeployPart {
  mode?: 'replicated' | 'global' | 'replicated-job' | 'global-job';
  replicas?: At<number>;
  /** without duplicates */
  constraints: PlacementConstraint[];
  maxReplicasPerNode?: At<number>;
  /** `node.labels.<key>`, without duplicates */
  spread: string[];
  reservations: Resources;
  limits: Resources;
  update: Partial<UpdateConfig>;
  rollback: Partial<UpdateConfig>;
}

type DeployFields = Pick<ServiceSpec, 'mode' | 'replicas' | 'placement' | 'reservations' | 'limits' | 'update' | 'rollback'>;
type Fail = (path: Path, message: string) => void;

/** `update_config` / `rollback_config` when a key is not given (each has its own; neither inherits). */
export const UPDATE_DEFAULTS: UpdateConfig = {
  parallelism: 1,
  delayMs: 0,
  failureAction: 'pause',
  monitorMs: 0,
  maxFailureRatio: 0,
  order: 'stop-first',
};

const LABEL_PREFIX = 'node.labels.';
const CONSTRAINT_FIELD = /^[a-z_][a-z0-9\-_.]+$/i; // Swarm's syntax for the field and the value
const CONSTRAINT_VALUE = /^[a-z0-9:\-_\s.*()?+[\]\\^$|/]+$/i;
const FAILURE_ACTIONS = { update_config: ['pause', 'continue', 'rollback'], rollback_config: ['pause', 'continue'] } as const;

/** `deploy:` of one service in one file (`path` is the deploy key's path). */
export function deployPart(src: YamlSource, d: Obj, path: Path, fail: Fail): DeployPart {
  const p = (...rest: (string | number)[]): Path => [...path, ...rest];
  const part: DeployPart = { constraints: [], spread: [], reservations: {}, limits: {}, update: {}, rollback: {} };
  if (d.mode !== undefined) {
    const mode = scalarText(d.mode);
    if (mode === 'replicated' || mode === 'global' || mode === 'replicated-job' || mode === 'global-job') part.mode = mode;
    else fail(p('mode'), `'${mode}' is not a deploy mode (replicated, global, replicated-job or global-job)`);
  }
  if (d.replicas !== undefined) {
    const n = toInt(d.replicas);
    if (n === undefined || n < 0) fail(p('replicas'), `'${scalarText(d.replicas)}' is not a number of replicas`);
    else part.replicas = { value: n, at: siteOf(src, p('replicas')) };
  }
  const placement = obj(d.placement);
  (Array.isArray(placement.constraints) ? placement.constraints : []).forEach((text: unknown, i) => {
    const c = constraint(scalarText(text));
    if (typeof c === 'string') fail(p('placement', 'constraints', i), c);
    else if (!part.constraints.some((x) => sameConstraint(x, c))) part.constraints.push(c);
  });
  if (placement.max_replicas_per_node !== undefined) {
    const n = toInt(placement.max_replicas_per_node);
    const at = p('placement', 'max_replicas_per_node');
    if (n === undefined || n < 1) fail(at, `'${scalarText(placement.max_replicas_per_node)}' is not a number of replicas per host (1 or more)`);
    else part.maxReplicasPerNode = { value: n, at: siteOf(src, at) };
  }
  (Array.isArray(placement.preferences) ? placement.preferences : []).forEach((pref: unknown, i) => {
    const spread = obj(pref).spread;
    const at = p('placement', 'preferences', i);
    if (typeof spread !== 'string') return fail(at, 'a preference needs spread: node.labels.<key>');
    const field = labelField(spread.trim());
    if (field === undefined) fail([...at, 'spread'], `spreading over '${spread}' is not supported by berth yet (only node.labels.<key>)`);
    else if (!part.spread.includes(field)) part.spread.push(field);
  });
  const resources = obj(d.resources);
  if (resources.reservations !== undefined) part.reservations = resourcesOf(obj(resources.reservations), p('resources', 'reservations'), fail);
  if (resources.limits !== undefined) part.limits = resourcesOf(obj(resources.limits), p('resources', 'limits'), fail);
  if (d.update_config !== undefined) part.update = updateConfig(obj(d.update_config), p('update_config'), 'update_config', fail);
  if (d.rollback_config !== undefined) part.rollback = updateConfig(obj(d.rollback_config), p('rollback_config'), 'rollback_config', fail);
  return part;
}

/** `deploy:` of two files of a stack merged: single values replaced, mappings key by key, lists appended without duplicates. */
export function mergeDeploy(base: DeployPart, over: DeployPart): DeployPart {
  const merged: DeployPart = {
    constraints: [...base.constraints, ...over.constraints.filter((c) => !base.constraints.some((b) => sameConstraint(b, c)))],
    spread: [...new Set([...base.spread, ...over.spread])],
    reservations: { ...base.reservations, ...over.reservations },
    limits: { ...base.limits, ...over.limits },
    update: { ...base.update, ...over.update },
    rollback: { ...base.rollback, ...over.rollback },
  };
  const mode = over.mode ?? base.mode;
  const replicas = over.replicas ?? base.replicas;
  const maxReplicasPerNode = over.maxReplicasPerNode ?? base.maxReplicasPerNode;
  if (mode) merged.mode = mode;
  if (replicas) merged.replicas = replicas;
  if (maxReplicasPerNode) merged.maxReplicasPerNode = maxReplicasPerNode;
  return merged;
}

/**
 * ServiceSpec's deploy fields from a stack's merged `deploy:`, defaults applied; errors for what
 * Swarm refuses together. A job mode is placed as its plain mode (the job itself: render/job.ts).
 */
export function deploySpec(d: DeployPart, errors: SourceError[], maxReplicas = Infinity): DeployFields {
  const given = d.mode ?? 'replicated';
  const mode = given === 'global' || given === 'global-job' ? 'global' : 'replicated';
  if (mode === 'replicated' && d.replicas && d.replicas.value > maxReplicas) {
    errors.push(siteError(d.replicas.at, `${d.replicas.value} replicas is over limits.replicas (${maxReplicas}) of the engine config`));
  }
  if (mode === 'global') {
    const why = `cannot be used with mode: ${given} (a global service runs one replica on each eligible host)`;
    if (d.replicas) errors.push(siteError(d.replicas.at, why));
    if (d.maxReplicasPerNode) errors.push(siteError(d.maxReplicasPerNode.at, why));
  }
  const placement: Placement = { constraints: d.constraints, spread: d.spread };
  if (d.maxReplicasPerNode) placement.maxReplicasPerNode = d.maxReplicasPerNode.value;
  return {
    mode,
    replicas: mode === 'global' ? 0 : (d.replicas?.value ?? 1),
    placement,
    reservations: setOnly(d.reservations),
    limits: setOnly(d.limits),
    update: { ...UPDATE_DEFAULTS, ...d.update },
    rollback: { ...UPDATE_DEFAULTS, ...d.rollback },
  };
}

const sameConstraint = (a: PlacementConstraint, b: PlacementConstraint) => a.field === b.field && a.op === b.op && a.value === b.value;

/** `node.labels.<key>` with the prefix in lower case (Swarm reads it case-insensitively); undefined for anything else. */
function labelField(field: string): string | undefined {
  const key = field.slice(LABEL_PREFIX.length);
  return field.toLowerCase().startsWith(LABEL_PREFIX) && key !== '' ? LABEL_PREFIX + key : undefined;
}

/** `<field> == <value>` or `<field> != <value>` as Swarm parses it; a message if malformed or a field berth does not know. */
export function constraint(text: string): PlacementConstraint | string {
  const bad = `'${text}' is not a placement constraint (like node.labels.zone == a or node.hostname != web-1)`;
  const op = text.includes('==') ? '==' : text.includes('!=') ? '!=' : undefined;
  if (op === undefined) return bad;
  const given = text.slice(0, text.indexOf(op)).trim();
  const value = text.slice(text.indexOf(op) + op.length).trim();
  if (!CONSTRAINT_FIELD.test(given) || !CONSTRAINT_VALUE.test(value)) return bad;
  const lower = given.toLowerCase();
  const field = lower === 'node.hostname' || lower === 'node.id' ? lower : labelField(given);
  if (field === undefined) {
    return `the field '${given}' is not supported by berth yet (constraints can use node.hostname, node.id and node.labels.<key>)`;
  }
  return { field, op, value };
}

/**
 * Resources without the zeros: 0 (and a pids limit of -1, read as 0) means "none" to Docker, so the
 * spec has one form for "not set". Zeros are kept until the files are merged: a later file's 0
 * lifts an earlier file's limit.
 */
function setOnly(r: Resources): Resources {
  return Object.fromEntries(Object.entries(r).filter(([, v]) => v !== 0));
}

/** `resources.reservations` / `.limits`. */
function resourcesOf(r: Obj, path: Path, fail: Fail): Resources {
  const out: Resources = {};
  if (r.cpus !== undefined) {
    const n = toNumber(r.cpus);
    if (n === undefined || n < 0) fail([...path, 'cpus'], `'${scalarText(r.cpus)}' is not a number of CPUs (like 0.5 or 2)`);
    else out.cpus = n;
  }
  if (r.memory !== undefined) {
    const n = parseBytes(scalarText(r.memory));
    if (n === undefined) fail([...path, 'memory'], `'${scalarText(r.memory)}' is not an amount of memory (like 512m, 1g or 1073741824)`);
    else out.memoryBytes = n;
  }
  if (r.pids !== undefined) {
    const n = toInt(r.pids);
    if (n === undefined || n < -1) fail([...path, 'pids'], `'${scalarText(r.pids)}' is not a number of processes (0 or -1: no limit)`);
    else out.pids = Math.max(n, 0);
  }
  return out;
}

function updateConfig(u: Obj, path: Path, key: keyof typeof FAILURE_ACTIONS, fail: Fail): Partial<UpdateConfig> {
  const out: Partial<UpdateConfig> = {};
  const p = (k: string): Path => [...path, k];
  if (u.parallelism !== undefined) {
    const n = toInt(u.parallelism);
    if (n === undefined || n < 0) fail(p('parallelism'), `'${scalarText(u.parallelism)}' is not a number of replicas at a time (0: all at once)`);
    else out.parallelism = n;
  }
  for (const [k, field] of [
    ['delay', 'delayMs'],
    ['monitor', 'monitorMs'],
  ] as const) {
    if (u[k] === undefined) continue;
    const ns = parseDuration(scalarText(u[k]));
    if (ns === undefined) fail(p(k), badDuration(u[k]));
    else out[field] = Math.round(ns / 1e6);
  }
  if (u.failure_action !== undefined) {
    const actions: readonly string[] = FAILURE_ACTIONS[key];
    const action = scalarText(u.failure_action);
    if (actions.includes(action)) out.failureAction = action as UpdateConfig['failureAction'];
    else fail(p('failure_action'), `'${action}' is not a failure action of ${key} (${actions.slice(0, -1).join(', ')} or ${actions.at(-1)})`);
  }
  if (u.max_failure_ratio !== undefined) {
    const n = toNumber(u.max_failure_ratio);
    if (n === undefined || n < 0 || n > 1) fail(p('max_failure_ratio'), `'${scalarText(u.max_failure_ratio)}' is not a ratio from 0 to 1`);
    else out.maxFailureRatio = n;
  }
  if (u.order === 'stop-first' || u.order === 'start-first') out.order = u.order;
  return out;
}
