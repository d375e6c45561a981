/**
 * The forges' webhooks as pure functions of (headers, raw body): what a delivery says (a push, a
 * pull request opened or updated, a ping or something else; the repo's URLs; the branches it
 * moved; the pull request's number, base and head) and whether its signature holds
 * against a secret. Also how a delivery's URLs are matched to the configured repos.
 * Nothing here does I/O; server/webhooks.ts does the HTTP, the bookkeeping and the syncs.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** Request headers, names in lower case (as Node gives them). */
export type Headers = Record<string, string | string[] | undefined>;

/** One branch a push moved, and its new head. */
export interface BranchPush {
  branch: string;
  /** the new head's SHA (absent only when a generic caller does not say) */
  after?: string;
}

/** A pull request (GitLab: a merge request) a delivery is about. */
export interface PullRequest {
  /** GitHub's and Gitea's number, GitLab's iid, Bitbucket's id: what the forge's URLs and comment API name it by */
  number: number;
  /** the forge's action: opened, synchronize, reopened (GitHub); open, update, reopen (GitLab); opened, synchronized (Gitea); the event key (Bitbucket) */
  action: string;
  /** whether berth plans on that action: the request opened, reopened, or its head moved */
  planned: boolean;
  /** the branch it would merge into: the repo's `branch:` is what berth plans for */
  baseBranch: string;
  /** its head commit as the payload names it (Bitbucket: a 12-character prefix) */
  headSha: string;
  /** what berth fetches for the head: refs/pull/N/head (GitHub, Gitea), refs/merge-requests/N/head (GitLab), else the head SHA (Bitbucket, which has no such ref) */
  headRef: string;
}

/** What a delivery says. */
export interface Delivery {
  kind: 'push' | 'pull' | 'ping' | 'other';
  /** the forge's event name: push, Push Hook, repo:push, pull_request, Merge Request Hook, ping, issues ... */
  event: string;
  /** the forge's id of the delivery, the same when it redelivers */
  deliveryId?: string;
  /** every URL form of the repo the payload gives: https clone URL, ssh, web page */
  repoUrls: string[];
  /** the branches the push moved: tags and deleted branches left out; one for most forges, Bitbucket may send several */
  pushes: BranchPush[];
  /** who pushed (or opened or updated the pull request), as the forge names them */
  pusher?: string;
  /** a pull request's: set when kind is 'pull' */
  pull?: PullRequest;
}

/** Whether a delivery carries a valid signature (or token) for a secret. */
export type Verdict = 'ok' | 'no signature' | 'bad signature';

export interface Forge {
  /** the forge's name, for messages */
  title: string;
  /** the header that carries the signature (or token), for messages */
  signatureHeader: string;
  /** the delivery's id, from the headers (generic: else a hash of the body) */
  deliveryId(headers: Headers, body?: Buffer): string | undefined;
  /** what the delivery says; throws PayloadError when a push, pull request or ping payload is not what the forge sends */
  parse(headers: Headers, body: Buffer): Delivery;
  /** checks the signature against the secret, in constant time */
  verify(secret: string, headers: Headers, body: Buffer): Verdict;
}

/** A payload berth cannot read, said so a person can act on it (answered with 400). */
export class PayloadError extends Error {}

/** The first value of a header. */
export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function get(o: unknown, path: string[]): unknown {
  for (const k of path) o = isObject(o) ? o[k] : undefined;
  return o;
}

/** A non-empty string at `path` (dot-separated), else undefined. */
function str(o: unknown, path: string): string | undefined {
  const v = get(o, path.split('.'));
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** A non-empty string at `path`, else a PayloadError naming it. */
function need(o: unknown, path: string, what: string): string {
  const v = str(o, path);
  if (v === undefined) throw new PayloadError(`the ${what} payload has no ${path} (a string)`);
  return v;
}

/** A whole number of at least 1 at `path` (a pull request's number), else a PayloadError naming it. */
function needNumber(o: unknown, path: string, what: string): number {
  const v = get(o, path.split('.'));
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) throw new PayloadError(`the ${what} payload has no ${path} (a whole number)`);
  return v;
}

/** A pull request from its parts, the head SHA checked to be one (hex). */
function pullRequest(what: string, p: Omit<PullRequest, 'planned'>, planned: readonly string[]): PullRequest {
  if (!/^[0-9a-f]{7,64}$/i.test(p.headSha)) throw new PayloadError(`the ${what} payload's head commit is not a commit SHA (hex)`);
  return { ...p, baseBranch: p.baseBranch.replace(/^refs\/heads\//, ''), planned: planned.includes(p.action) };
}

/**
 * A `pull_request` payload as GitHub and Gitea send it (Gitea copies GitHub's shape): the number,
 * the action, `pull_request.base.ref` and `head.sha`; the head fetched as `refs/pull/N/head`.
 */
function issuePull(p: unknown, planned: readonly string[]): PullRequest {
  const number = needNumber(p, 'pull_request.number', 'pull_request');
  return pullRequest(
    'pull_request',
    {
      number,
      action: need(p, 'action', 'pull_request'),
      baseBranch: need(p, 'pull_request.base.ref', 'pull_request'),
      headSha: need(p, 'pull_request.head.sha', 'pull_request'),
      headRef: `refs/pull/${number}/head`,
    },
    planned,
  );
}

/** The distinct strings at these paths. */
function strings(o: unknown, paths: string[]): string[] {
  return [...new Set(paths.map((p) => str(o, p)).filter((v): v is string => v !== undefined))];
}

/**
 * The JSON object of the body; a form-encoded body (GitHub's and Gitea's other content type) is
 * read from its `payload` field.
 */
function jsonBody(headers: Headers, body: Buffer): Json {
  if (body.length === 0) throw new PayloadError('the body is empty: a JSON payload is needed');
  let text = body.toString('utf8');
  if (/^application\/x-www-form-urlencoded\b/i.test(header(headers, 'content-type') ?? '')) {
    const payload = new URLSearchParams(text).get('payload');
    if (payload === null) throw new PayloadError("the form-encoded body has no payload field: set the webhook's content type to application/json");
    text = payload;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PayloadError(`the body is not JSON (${(err as Error).message}): set the webhook's content type to application/json`);
  }
  if (!isObject(value)) throw new PayloadError('the body is JSON but not an object: a JSON object is needed');
  return value;
}

/** The branch push of a `ref` (refs/heads/...) moved to `after`; none for a tag or a deleted branch. */
function branchPush(ref: string, after: string | undefined): BranchPush[] {
  if (!ref.startsWith('refs/heads/') || (after !== undefined && /^0+$/.test(after))) return [];
  return [{ branch: ref.slice('refs/heads/'.length), after }];
}

const hmac = (secret: string, body: Buffer | string) => createHmac('sha256', secret).update(body).digest();

/** `sha256=<hex HMAC-SHA256 of the body>`: the X-Berth-Signature the generic webhook checks, and berth's own webhook notifications send. */
export const berthSignature = (secret: string, body: Buffer | string) => `sha256=${hmac(secret, body).toString('hex')}`;

/** Checks `given` (hex HMAC-SHA256 of the body, after `prefix`) in constant time. */
function checkHmac(secret: string, body: Buffer, given: string | undefined, prefix = ''): Verdict {
  if (!given) return 'no signature';
  const hex = given.trim();
  if (!hex.startsWith(prefix) || !/^[0-9a-f]{64}$/i.test(hex.slice(prefix.length))) return 'bad signature';
  return timingSafeEqual(hmac(secret, body), Buffer.from(hex.slice(prefix.length), 'hex')) ? 'ok' : 'bad signature';
}

/** Compares a plain token with the secret in constant time (over their SHA-256, which have equal lengths). */
function checkToken(secret: string, given: string | undefined): Verdict {
  if (!given) return 'no signature';
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(secret), digest(given)) ? 'ok' : 'bad signature';
}

/** A forge from its parts: `read` says what the payload says, the delivery id comes from `deliveryId`. */
function define(def: Omit<Forge, 'parse'> & { read(headers: Headers, body: Buffer): Omit<Delivery, 'deliveryId'> }): Forge {
  const { read, ...forge } = def;
  return {
    ...forge,
    parse(headers, body) {
      const d = read(headers, body);
      // every push, pull request and ping must name its repo
      if (d.kind !== 'other' && d.repoUrls.length === 0) throw new PayloadError(`the ${d.event} payload names no repository URL`);
      return { ...d, deliveryId: forge.deliveryId(headers, body) };
    },
  };
}

const github = define({
  title: 'GitHub',
  signatureHeader: 'X-Hub-Signature-256',
  deliveryId: (h) => header(h, 'x-github-delivery'),
  read(h, body) {
    const event = header(h, 'x-github-event');
    if (!event) throw new PayloadError('no X-GitHub-Event header: is this a GitHub webhook?');
    const base = { event, repoUrls: [], pushes: [] };
    if (event !== 'push' && event !== 'ping' && event !== 'pull_request') return { ...base, kind: 'other' };
    const p = jsonBody(h, body);
    const repoUrls = strings(p, ['repository.clone_url', 'repository.ssh_url', 'repository.html_url', 'repository.git_url']);
    if (event === 'ping') return { ...base, kind: 'ping', repoUrls };
    if (event === 'pull_request') {
      return { ...base, kind: 'pull', repoUrls, pull: issuePull(p, ['opened', 'synchronize', 'reopened']), pusher: str(p, 'sender.login') };
    }
    const pushes = branchPush(need(p, 'ref', 'push'), need(p, 'after', 'push'));
    return { ...base, kind: 'push', repoUrls, pushes, pusher: str(p, 'pusher.name') };
  },
  verify: (secret, h, body) => checkHmac(secret, body, header(h, 'x-hub-signature-256'), 'sha256='),
});

const gitlab = define({
  title: 'GitLab',
  signatureHeader: 'X-Gitlab-Token',
  // Idempotency-Key stays the same when GitLab retries (17.x); X-Gitlab-Event-UUID before that
  deliveryId: (h) => header(h, 'idempotency-key') ?? header(h, 'x-gitlab-event-uuid'),
  read(h, body) {
    const event = header(h, 'x-gitlab-event');
    if (!event) throw new PayloadError('no X-Gitlab-Event header: is this a GitLab webhook?');
    const base = { event, repoUrls: [], pushes: [] };
    if (event !== 'Push Hook' && event !== 'System Hook' && event !== 'Merge Request Hook') return { ...base, kind: 'other' };
    const p = jsonBody(h, body);
    const kind = str(p, 'object_kind');
    if (kind === 'merge_request' || event === 'Merge Request Hook') {
      if (kind !== 'merge_request') throw new PayloadError(`the ${event} payload's object_kind is not merge_request`);
      const number = needNumber(p, 'object_attributes.iid', 'merge request');
      const pull = pullRequest(
        'merge request',
        {
          number,
          action: need(p, 'object_attributes.action', 'merge request'),
          baseBranch: need(p, 'object_attributes.target_branch', 'merge request'),
          headSha: need(p, 'object_attributes.last_commit.id', 'merge request'),
          headRef: `refs/merge-requests/${number}/head`,
        },
        ['open', 'update', 'reopen'],
      );
      const repoUrls = strings(p, ['project.git_http_url', 'project.git_ssh_url', 'project.web_url', 'object_attributes.target.git_http_url']);
      return { ...base, kind: 'pull', repoUrls, pull, pusher: str(p, 'user.username') ?? str(p, 'user.name') };
    }
    if (kind !== 'push') return { ...base, kind: 'other' };
    const repoUrls = strings(p, [
      'project.git_http_url',
      'project.git_ssh_url',
      'project.web_url',
      'repository.git_http_url',
      'repository.git_ssh_url',
      'repository.homepage',
    ]);
    const ref = need(p, 'ref', 'push');
    const pushes = branchPush(ref, str(p, 'checkout_sha') ?? need(p, 'after', 'push'));
    return { ...base, kind: 'push', repoUrls, pushes, pusher: str(p, 'user_username') ?? str(p, 'user_name') };
  },
  verify: (secret, h) => checkToken(secret, header(h, 'x-gitlab-token')),
});

const gitea = define({
  title: 'Gitea/Forgejo',
  signatureHeader: 'X-Gitea-Signature',
  deliveryId: (h) => header(h, 'x-gitea-delivery') ?? header(h, 'x-forgejo-delivery') ?? header(h, 'x-gogs-delivery'),
  read(h, body) {
    const event = header(h, 'x-gitea-event') ?? header(h, 'x-forgejo-event') ?? header(h, 'x-gogs-event');
    if (!event) throw new PayloadError('no X-Gitea-Event (or X-Forgejo-Event) header: is this a Gitea or Forgejo webhook?');
    const base = { event, repoUrls: [], pushes: [] };
    if (event !== 'push' && event !== 'pull_request') return { ...base, kind: 'other' };
    const p = jsonBody(h, body);
    const repoUrls = strings(p, ['repository.clone_url', 'repository.ssh_url', 'repository.html_url']);
    if (event === 'pull_request') {
      const pull = issuePull(p, ['opened', 'synchronized', 'reopened']);
      return { ...base, kind: 'pull', repoUrls, pull, pusher: str(p, 'sender.login') ?? str(p, 'sender.username') };
    }
    const pushes = branchPush(need(p, 'ref', 'push'), need(p, 'after', 'push'));
    return { ...base, kind: 'push', repoUrls, pushes, pusher: str(p, 'pusher.login') ?? str(p, 'pusher.username') };
  },
  verify(secret, h, body) {
    const plain = header(h, 'x-gitea-signature') ?? header(h, 'x-forgejo-signature');
    return plain ? checkHmac(secret, body, plain) : checkHmac(secret, body, header(h, 'x-hub-signature-256'), 'sha256=');
  },
});

const bitbucket = define({
  title: 'Bitbucket',
  signatureHeader: 'X-Hub-Signature',
  deliveryId: (h) => header(h, 'x-request-uuid'),
  read(h, body) {
    const event = header(h, 'x-event-key');
    if (!event) throw new PayloadError('no X-Event-Key header: is this a Bitbucket Cloud webhook?');
    const base = { event, repoUrls: [], pushes: [] };
    if (event !== 'repo:push' && !event.startsWith('pullrequest:')) return { ...base, kind: 'other' };
    const p = jsonBody(h, body);
    if (event.startsWith('pullrequest:')) {
      // Bitbucket has no ref of a pull request's head: its commit is fetched by the (12-character) hash
      const headSha = need(p, 'pullrequest.source.commit.hash', event);
      const pull = pullRequest(
        event,
        {
          number: needNumber(p, 'pullrequest.id', event),
          action: event,
          baseBranch: need(p, 'pullrequest.destination.branch.name', event),
          headSha,
          headRef: headSha,
        },
        ['pullrequest:created', 'pullrequest:updated'],
      );
      const repoUrls = strings(p, ['repository.links.html.href']);
      return { ...base, kind: 'pull', repoUrls, pull, pusher: str(p, 'actor.nickname') ?? str(p, 'actor.display_name') };
    }
    const changes = get(p, ['push', 'changes']);
    if (!Array.isArray(changes)) throw new PayloadError('the repo:push payload has no push.changes (a list)');
    // `new` is null when the push deletes the branch; tags have type 'tag'
    const pushes = changes
      .filter((c) => str(c, 'new.type') === 'branch' && str(c, 'new.name'))
      .map((c) => ({ branch: str(c, 'new.name')!, after: str(c, 'new.target.hash') }));
    const repoUrls = strings(p, ['repository.links.html.href']);
    return { ...base, kind: 'push', repoUrls, pushes, pusher: str(p, 'actor.nickname') ?? str(p, 'actor.display_name') };
  },
  verify: (secret, h, body) => checkHmac(secret, body, header(h, 'x-hub-signature'), 'sha256='),
});

/** Any CI or script: `{ "repo": url, "branch": "main", "after": sha }`, signed like GitHub in X-Berth-Signature. */
const generic = define({
  title: 'generic',
  signatureHeader: 'X-Berth-Signature',
  deliveryId: (h, body) =>
    header(h, 'x-berth-delivery') ?? (body?.length ? `sha256:${createHash('sha256').update(body).digest('hex').slice(0, 32)}` : undefined),
  read(h, body) {
    const p = jsonBody(h, body);
    const repo = need(p, 'repo', 'generic');
    const branch = need(p, 'branch', 'generic').replace(/^refs\/heads\//, '');
    const after = get(p, ['after']);
    if (after !== undefined && (typeof after !== 'string' || !/^[0-9a-f]{4,64}$/i.test(after))) {
      throw new PayloadError("the generic payload's after must be a commit SHA (hex)");
    }
    return { kind: 'push', event: 'push', repoUrls: [repo], pushes: [{ branch, after }] };
  },
  verify: (secret, h, body) => checkHmac(secret, body, header(h, 'x-berth-signature'), 'sha256='),
});

/** A tag a registry says was pushed. */
export interface ImagePush {
  /** `host[:port]/repository:tag`, as an image reference names it */
  image: string;
  /** the manifest's digest, when the registry says */
  digest?: string;
}

/** What a registry's delivery says: the tags pushed (none: not a push, such as a pull or a blob upload). */
export interface RegistryDelivery {
  event: string;
  deliveryId?: string;
  pushes: ImagePush[];
  pusher?: string;
}

/**
 * `POST /webhooks/registry` (docs/config.md, "Following an image's tag"): the push notifications of
 * the distribution registry (its `notifications.endpoints`: an envelope of events, each naming the
 * request's host, the repository and the tag), or any caller's `{ "image": ref }` / `{ "images": [...] }`.
 * Authenticated by the engine's registryWebhookSecretFile: an `X-Berth-Signature` as for the generic
 * webhook, or the secret itself as `Authorization: Bearer` (a registry sends fixed headers, it cannot sign).
 */
export const registryHook = {
  title: 'registry',
  signatureHeader: 'X-Berth-Signature (or Authorization: Bearer)',
  deliveryId(h: Headers, body: Buffer): string | undefined {
    return header(h, 'x-berth-delivery') ?? (body.length ? `sha256:${createHash('sha256').update(body).digest('hex').slice(0, 32)}` : undefined);
  },
  parse(h: Headers, body: Buffer): RegistryDelivery {
    const p = jsonBody(h, body);
    const deliveryId = this.deliveryId(h, body);
    if (Array.isArray(p.events)) {
      const pushes: ImagePush[] = [];
      let pusher: string | undefined;
      for (const e of p.events) {
        if (str(e, 'action') !== 'push') continue;
        const [repository, tag] = [str(e, 'target.repository'), str(e, 'target.tag')];
        if (!repository || !tag) continue; // a blob, or a manifest pushed by digest alone
        const host = str(e, 'request.host') ?? hostOf(str(e, 'target.url'));
        if (!host) throw new PayloadError(`the registry's push event of ${repository}:${tag} names no host (request.host)`);
        pushes.push({ image: `${host}/${repository}:${tag}`, digest: str(e, 'target.digest') });
        pusher ??= str(e, 'actor.name');
      }
      return { event: pushes.length ? 'push' : 'other', deliveryId, pushes, pusher };
    }
    const listed = p.images ?? (p.image === undefined ? undefined : [p.image]);
    if (!Array.isArray(listed) || listed.length === 0 || !listed.every((i) => typeof i === 'string' && /^[^\s@]+(@sha256:[0-9a-f]{64})?$/.test(i))) {
      throw new PayloadError('the registry payload is neither a registry notification (events) nor { "image": "host/name:tag" } (or "images": [...])');
    }
    return { event: 'push', deliveryId, pushes: (listed as string[]).map((image) => ({ image })) };
  },
  verify(secret: string, h: Headers, body: Buffer): Verdict {
    const bearer = /^Bearer\s+(.+)$/i.exec(header(h, 'authorization') ?? '')?.[1];
    return bearer !== undefined ? checkToken(secret, bearer.trim()) : checkHmac(secret, body, header(h, 'x-berth-signature'), 'sha256=');
  },
};

/** The host[:port] of a URL, if it is one. */
function hostOf(url: string | undefined): string | undefined {
  try {
    return url ? new URL(url).host || undefined : undefined;
  } catch {
    return undefined;
  }
}

/** The providers of `POST /webhooks/:provider`. */
export const FORGES: ReadonlyMap<string, Forge> = new Map(Object.entries({ github, gitlab, gitea, bitbucket, generic }));

/**
 * A repo URL as `host/path`, in lower case, without scheme, credentials, port, `.git` and trailing
 * slashes, so that the https, ssh (`ssh://git@host/org/repo`, `git@host:org/repo`) and web forms
 * of one repo are equal; a local path (or file:// URL) as `file:/path`. undefined when it is none of these.
 */
export function normalizeRepoUrl(url: string): string | undefined {
  const u = url.trim();
  let host: string;
  let path: string;
  const scp = /^(?:[^@/]+@)?([^:/@]+):(?!\/\/)(.+)$/.exec(u);
  if (u.startsWith('/')) [host, path] = ['file:', u];
  else if (scp) [host, path] = [scp[1]!, scp[2]!];
  else {
    let parsed: URL;
    try {
      parsed = new URL(u);
    } catch {
      return undefined;
    }
    if (parsed.protocol === 'file:') [host, path] = ['file:', parsed.pathname];
    else if (parsed.hostname) [host, path] = [parsed.hostname, decodeURIComponent(parsed.pathname)];
    else return undefined;
  }
  path = path
    .replace(/\/+$/, '')
    .replace(/\.git$/i, '')
    .replace(/^\/+|\/+$/g, '');
  return host === 'file:' ? `file:/${path}` : `${host}/${path}`.toLowerCase();
}

/** The configured repos whose URL is one of `urls` (compared normalised). */
export function matchRepos<R extends { url: string }>(repos: readonly R[], urls: readonly string[]): R[] {
  const wanted = new Set(urls.map(normalizeRepoUrl).filter((u) => u !== undefined));
  return repos.filter((r) => wanted.has(normalizeRepoUrl(r.url) ?? ''));
}
