/**
 * The `notifications:` of the engine config (docs/notifications.md): who is told what, checked into
 * typed targets. Pure: the problems come back with the path of the key they are about, and
 * src/config.ts turns them into `file:line:col` messages. Secret files are only named here; the
 * engine reads them at start (src/notify/deliver.ts).
 */
import { COMMIT_EVENTS, DEFAULT_EVENTS, EVENT_NAMES, type EventName } from './events.ts';

/** A JSON POST (webhook) or a chat service's incoming webhook. */
export const MESSAGE_TYPES = ['webhook', 'slack', 'discord', 'teams'] as const;
/** A forge's commit status API. */
export const FORGE_TYPES = ['github', 'gitlab', 'gitea', 'bitbucket'] as const;
export const TARGET_TYPES = [...MESSAGE_TYPES, ...FORGE_TYPES] as const;

export type MessageType = (typeof MESSAGE_TYPES)[number];
export type ForgeType = (typeof FORGE_TYPES)[number];
export type TargetType = MessageType | ForgeType;

/** The API each forge answers at when `apiUrl` is not given (Gitea has no public one: it is required). */
export const DEFAULT_API_URLS: Record<ForgeType, string | undefined> = {
  github: 'https://api.github.com',
  gitlab: 'https://gitlab.com/api/v4',
  gitea: undefined,
  bitbucket: 'https://api.bitbucket.org/2.0',
};

interface TargetCommon {
  /** unique; named in the delivery log, the audit and the metrics */
  name: string;
  /** what it is told; never empty */
  events: EventName[];
  /** the repos whose events it gets; absent: every repo's */
  repos?: string[];
  /** the stacks whose events it gets; absent: every stack's */
  stacks?: string[];
}

/** A webhook or a chat service: `url` as written, or `urlFile`, a file holding it (absolute once loaded). */
export type MessageTarget = TargetCommon & { type: MessageType; url?: string; urlFile?: string; secretFile?: string };

/** A forge's commit statuses on `repository` (owner/repo; GitLab: the project's full path; Bitbucket: workspace/repo). */
export type ForgeTarget = TargetCommon & { type: ForgeType; apiUrl: string; repository: string; tokenFile: string };

export type NotificationTarget = MessageTarget | ForgeTarget;

export const isForge = (t: { type: TargetType }): t is ForgeTarget => (FORGE_TYPES as readonly string[]).includes(t.type);

/** One entry as written (after the schema below held). */
export interface RawTarget {
  name: string;
  type: string;
  url?: string;
  urlFile?: string;
  secretFile?: string;
  apiUrl?: string;
  repository?: string;
  tokenFile?: string;
  events?: string[];
  repos?: string[];
  stacks?: string[];
}

/** The shape of `notifications:` for the config's JSON schema; the meaning is checked by checkTargets. */
export const NOTIFICATIONS_SCHEMA = {
  type: 'array',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'type'],
    properties: {
      name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_.-]*$' },
      type: { type: 'string' },
      url: { type: 'string', minLength: 1 },
      urlFile: { type: 'string', minLength: 1 },
      secretFile: { type: 'string', minLength: 1 },
      apiUrl: { type: 'string', minLength: 1 },
      repository: { type: 'string', minLength: 1 },
      tokenFile: { type: 'string', minLength: 1 },
      events: { type: 'array', minItems: 1, items: { type: 'string' } },
      repos: { type: 'array', minItems: 1, items: { type: 'string' } },
      stacks: { type: 'array', minItems: 1, items: { type: 'string' } },
    },
  },
} as const;

/** A problem with one key: `path` is where it is in the config document (for its line and column). */
export interface ConfigProblem {
  path: Array<string | number>;
  message: string;
}

export interface TargetContext {
  /** the configured repos: names, and URLs (a forge target's default repos are those whose URL names its repository) */
  repos: Array<{ name: string; url: string }>;
  /** publicUrl, if set: Bitbucket needs a link with every status */
  publicUrl?: string;
  /** makes a relative path absolute (relative to the config file) */
  rel: (p: string) => string;
}

/** Checks `notifications:` as a whole: the targets, or every problem found. */
export function checkTargets(raw: RawTarget[], ctx: TargetContext): { targets: NotificationTarget[]; problems: ConfigProblem[] } {
  const problems: ConfigProblem[] = [];
  const targets: NotificationTarget[] = [];
  const seen = new Set<string>();
  raw.forEach((t, i) => {
    const at = (...path: Array<string | number>) => ['notifications', i, ...path];
    const problem = (message: string, ...path: Array<string | number>) => problems.push({ path: at(...path), message });
    if (seen.has(t.name)) problem(`notifications.${i}.name: the name '${t.name}' is used twice`, 'name');
    seen.add(t.name);
    if (!(TARGET_TYPES as readonly string[]).includes(t.type)) {
      problem(`notifications.${i}.type: unknown type '${t.type}'${suggest(t.type, TARGET_TYPES)}: one of ${TARGET_TYPES.join(', ')}`, 'type');
      return;
    }
    const type = t.type as TargetType;
    const forge = (FORGE_TYPES as readonly string[]).includes(type);
    const before = problems.length;
    const refuse = (key: keyof RawTarget, why: string) => t[key] !== undefined && problem(`notifications.${i}.${key}: ${why}`, key);
    if (forge) {
      for (const key of ['url', 'urlFile', 'secretFile'] as const)
        refuse(key, `a ${type} target posts commit statuses to apiUrl with tokenFile: it takes no ${key}`);
      if (t.tokenFile === undefined) problem(`notifications.${i}: a ${type} target needs tokenFile (a file holding the API token statuses are posted with)`);
      if (t.repository === undefined) problem(`notifications.${i}: a ${type} target needs repository (${REPOSITORY_FORM[type as ForgeType]})`);
      else if (!repositoryOk(type as ForgeType, t.repository))
        problem(`notifications.${i}.repository: '${t.repository}' is not ${REPOSITORY_FORM[type as ForgeType]}`, 'repository');
      const apiUrl = t.apiUrl ?? DEFAULT_API_URLS[type as ForgeType];
      if (apiUrl === undefined) problem(`notifications.${i}: a gitea target needs apiUrl (the server's API: https://gitea.example.com/api/v1)`);
      else if (!httpUrl(apiUrl)) problem(`notifications.${i}.apiUrl: '${apiUrl}' is not an http:// or https:// URL`, 'apiUrl');
      if (type === 'bitbucket' && ctx.publicUrl === undefined)
        problem(`notifications.${i}: Bitbucket needs a link with every status: set publicUrl (the address berth's dashboard is reached at)`);
    } else {
      for (const key of ['apiUrl', 'repository', 'tokenFile'] as const) refuse(key, `a ${type} target posts to its url: it takes no ${key}`);
      if (type !== 'webhook') refuse('secretFile', `only a webhook target signs its body (X-Berth-Signature); ${type} takes no secretFile`);
      if (t.url !== undefined && t.urlFile !== undefined) problem(`notifications.${i}: give url or urlFile, not both`, 'urlFile');
      else if (t.url === undefined && t.urlFile === undefined)
        problem(`notifications.${i}: a ${type} target needs url${type === 'webhook' ? '' : ', or urlFile (a file holding it: the URL is a secret)'}`);
      // the value is not repeated: a chat service's webhook URL is a secret
      else if (t.url !== undefined && !httpUrl(t.url)) problem(`notifications.${i}.url: not an http:// or https:// URL`, 'url');
    }
    const allowed = forge ? COMMIT_EVENTS : EVENT_NAMES;
    (t.events ?? []).forEach((e, j) => {
      if (!(EVENT_NAMES as readonly string[]).includes(e))
        problem(`notifications.${i}.events.${j}: unknown event '${e}'${suggest(e, EVENT_NAMES)}`, 'events', j);
      else if (!allowed.includes(e as EventName))
        problem(`notifications.${i}.events.${j}: a commit status tells of syncs only (${COMMIT_EVENTS.join(', ')}), not ${e}`, 'events', j);
    });
    const names = ctx.repos.map((r) => r.name);
    (t.repos ?? []).forEach((r, j) => {
      if (!names.includes(r)) problem(`notifications.${i}.repos.${j}: no repo '${r}' in this config${suggest(r, names)}`, 'repos', j);
    });
    let repos = t.repos;
    if (forge && repos === undefined && t.repository !== undefined) {
      repos = ctx.repos.filter((r) => urlNames(r.url, t.repository!)).map((r) => r.name);
      if (repos.length === 0)
        problem(
          `notifications.${i}: no repo of this config has a URL naming ${t.repository}: say whose commits its statuses are about with repos: [NAME]`,
          'repository',
        );
    }
    if (problems.length > before) return;
    const common: TargetCommon = {
      name: t.name,
      events: (t.events as EventName[] | undefined) ?? [...(forge ? COMMIT_EVENTS : DEFAULT_EVENTS)],
      ...(repos ? { repos } : {}),
      ...(t.stacks ? { stacks: t.stacks } : {}),
    };
    if (forge) {
      const apiUrl = (t.apiUrl ?? DEFAULT_API_URLS[type as ForgeType]!).replace(/\/+$/, '');
      targets.push({ ...common, type: type as ForgeType, apiUrl, repository: t.repository!.replace(/^\/+|\/+$/g, ''), tokenFile: ctx.rel(t.tokenFile!) });
    } else {
      targets.push({
        ...common,
        type: type as MessageType,
        ...(t.url !== undefined ? { url: t.url } : { urlFile: ctx.rel(t.urlFile!) }),
        ...(t.secretFile !== undefined ? { secretFile: ctx.rel(t.secretFile) } : {}),
      });
    }
  });
  return { targets, problems };
}

const REPOSITORY_FORM: Record<ForgeType, string> = {
  github: 'owner/repo',
  gitea: 'owner/repo',
  gitlab: "the project's path, group/project or group/subgroup/project",
  bitbucket: 'workspace/repo',
};

function repositoryOk(type: ForgeType, repository: string): boolean {
  const parts = repository.replace(/^\/+|\/+$/g, '').split('/');
  if (parts.some((p) => !/^[\w.-]+$/.test(p) || p === '.' || p === '..')) return false;
  return type === 'gitlab' ? parts.length >= 2 : parts.length === 2;
}

export function httpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

/** Whether a repo's URL (https://forge/acme/platform.git, git@forge:acme/platform) names `repository`. */
function urlNames(url: string, repository: string): boolean {
  const path = url
    .replace(/^[a-z][a-z0-9+.-]*:\/\/[^/]*/i, '')
    .replace(/^[^/:]+@[^:]+:/, '/')
    .replace(/\.git\/?$/, '')
    .replace(/\/+$/, '')
    .toLowerCase();
  return path.endsWith(`/${repository.replace(/^\/+|\/+$/g, '').toLowerCase()}`);
}

/** ` (did you mean X?)` for the known name nearest to `given`, when one is near enough. */
export function suggest(given: string, known: readonly string[]): string {
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const d = distance(given.toLowerCase(), name.toLowerCase());
    if (!best || d < best.d) best = { name, d };
  }
  return best && best.d <= Math.max(2, Math.floor(best.name.length / 3)) ? ` (did you mean ${best.name}?)` : '';
}

/** Levenshtein distance. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
