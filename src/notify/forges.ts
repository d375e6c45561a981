/**
 * A small client per forge: the HTTP request that sets a commit status, as each forge's API
 * documents it (GitHub "Create a commit status", GitLab "Set the pipeline status of a commit",
 * Gitea/Forgejo "Create a commit status", Bitbucket Cloud "Create a build status for a commit"),
 * and those that add berth's comment to a pull request and edit it later (GitHub "Create an issue
 * comment" / "Update an issue comment", GitLab "Create new merge request note" / "Modify existing
 * merge request note", Gitea "Create a comment to an issue" / "Edit a comment", Bitbucket Cloud
 * "Create a comment on a pull request" / "Update a comment on a pull request"). Pure request
 * builders: sending is src/notify/http.ts's. docs/notifications.md, "Commit statuses" and "Plans
 * on pull requests".
 */
import { createHash } from 'node:crypto';
import type { ForgeType } from './config.ts';
import type { HttpRequest } from './http.ts';

/** berth's own states; each forge names them its way. */
export type CommitState = 'pending' | 'success' | 'failure' | 'error';

export interface CommitStatus {
  sha: string;
  state: CommitState;
  /** `berth/<stack>`: one status per stack, each sync of it replacing the last */
  context: string;
  /** one line, at most 140 characters */
  description: string;
  /** the dashboard's page of the sync, when publicUrl is set */
  targetUrl?: string;
}

/** Where a client posts, and with what. The token is a secret: it goes in a header, never in a message. */
export interface ForgeAccess {
  /** the API's base, no trailing slash: https://api.github.com, https://gitlab.example.com/api/v4 */
  apiUrl: string;
  /** owner/repo; GitLab: the project's full path; Bitbucket: workspace/repo */
  repository: string;
  token: string;
}

export interface ForgeClient {
  readonly forge: ForgeType;
  /** The request that sets `status` on its commit. */
  statusRequest(status: CommitStatus): HttpRequest;
  /** The request that adds `body` as a comment on pull request `pull` (GitLab: merge request iid), or with `commentId` edits that comment. */
  commentRequest(pull: number, body: string, commentId?: string): HttpRequest;
}

const JSON_TYPE = { 'content-type': 'application/json', 'user-agent': 'berth' };

/** Each path segment encoded on its own: owner/repo stays two segments. */
const segments = (repository: string) => repository.split('/').map(encodeURIComponent).join('/');

const request = (method: HttpRequest['method'], url: string, headers: Record<string, string>, body: unknown): HttpRequest => ({
  method,
  url,
  headers: { ...JSON_TYPE, ...headers },
  body: JSON.stringify(body),
});
const post = (url: string, headers: Record<string, string>, body: unknown) => request('POST', url, headers, body);

/** A comment's id as a path segment. */
const idSegment = (id: string) => encodeURIComponent(id);

/**
 * GitHub and Gitea/Forgejo (which follows GitHub's API here): POST /repos/{owner}/{repo}/statuses/{sha}
 * with GitHub's states; a pull request's conversation is its issue's, so its comments are issue
 * comments: POST /repos/{owner}/{repo}/issues/{n}/comments, PATCH /repos/{owner}/{repo}/issues/comments/{id}.
 */
function repoClient(forge: 'github' | 'gitea', a: ForgeAccess, auth: Record<string, string>): ForgeClient {
  const repo = `${a.apiUrl}/repos/${segments(a.repository)}`;
  return {
    forge,
    statusRequest: (s) =>
      post(`${repo}/statuses/${s.sha}`, auth, {
        state: s.state,
        context: s.context,
        description: s.description,
        ...(s.targetUrl ? { target_url: s.targetUrl } : {}),
      }),
    commentRequest: (pull, body, id) =>
      id === undefined ? post(`${repo}/issues/${pull}/comments`, auth, { body }) : request('PATCH', `${repo}/issues/comments/${idSegment(id)}`, auth, { body }),
  };
}

/** GitHub: a bearer token. */
export function githubClient(a: ForgeAccess): ForgeClient {
  return repoClient('github', a, { authorization: `Bearer ${a.token}`, accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' });
}

/** Gitea and Forgejo: `Authorization: token X`. */
export function giteaClient(a: ForgeAccess): ForgeClient {
  return repoClient('gitea', a, { authorization: `token ${a.token}` });
}

/**
 * GitLab: POST /projects/{the project's path, URL-encoded}/statuses/{sha}, `PRIVATE-TOKEN`; the
 * context is `name`. berth applying a commit is `running` (GitLab's `pending` is a job waiting for
 * a runner), a failure or an error `failed`.
 */
export function gitlabClient(a: ForgeAccess): ForgeClient {
  const STATE: Record<CommitState, string> = { pending: 'running', success: 'success', failure: 'failed', error: 'failed' };
  const auth = { 'private-token': a.token };
  const project = `${a.apiUrl}/projects/${encodeURIComponent(a.repository)}`;
  return {
    forge: 'gitlab',
    statusRequest: (s) =>
      post(`${project}/statuses/${s.sha}`, auth, {
        state: STATE[s.state],
        name: s.context,
        description: s.description,
        ...(s.targetUrl ? { target_url: s.targetUrl } : {}),
      }),
    commentRequest: (iid, body, id) =>
      id === undefined
        ? post(`${project}/merge_requests/${iid}/notes`, auth, { body })
        : request('PUT', `${project}/merge_requests/${iid}/notes/${idSegment(id)}`, auth, { body }),
  };
}

/**
 * Bitbucket Cloud: POST /repositories/{workspace}/{repo}/commit/{sha}/statuses/build, a bearer
 * token; `key` (at most 40 characters) identifies the status, `url` is required. States
 * INPROGRESS, SUCCESSFUL, FAILED.
 */
export function bitbucketClient(a: ForgeAccess): ForgeClient {
  const STATE: Record<CommitState, string> = { pending: 'INPROGRESS', success: 'SUCCESSFUL', failure: 'FAILED', error: 'FAILED' };
  const auth = { authorization: `Bearer ${a.token}` };
  const repo = `${a.apiUrl}/repositories/${segments(a.repository)}`;
  return {
    forge: 'bitbucket',
    statusRequest: (s) =>
      post(`${repo}/commit/${s.sha}/statuses/build`, auth, {
        key: bitbucketKey(s.context),
        state: STATE[s.state],
        name: s.context,
        description: s.description,
        url: s.targetUrl ?? '',
      }),
    commentRequest: (pull, body, id) =>
      id === undefined
        ? post(`${repo}/pullrequests/${pull}/comments`, auth, { content: { raw: body } })
        : request('PUT', `${repo}/pullrequests/${pull}/comments/${idSegment(id)}`, auth, { content: { raw: body } }),
  };
}

/** The context as Bitbucket's key: as it is when it fits in 40 characters, else its start and a hash of it. */
export function bitbucketKey(context: string): string {
  if (context.length <= 40) return context;
  return `${context.slice(0, 29)}-${createHash('sha256').update(context).digest('hex').slice(0, 10)}`;
}

export const FORGE_CLIENTS: Record<ForgeType, (a: ForgeAccess) => ForgeClient> = {
  github: githubClient,
  gitlab: gitlabClient,
  gitea: giteaClient,
  bitbucket: bitbucketClient,
};
