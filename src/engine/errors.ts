/**
 * Why the engine refused a request, as a stable code that code (and API clients) branch on; the
 * message says the same to a person (docs/api.md, "Errors").
 */
export type EngineErrorCode =
  /** no repo's branch head defines a stack of that name */
  | 'unknown-stack'
  /** a rollback without --to, and no commit before the one applied to go back to */
  | 'nothing-to-roll-back'
  /** the rollback's commit cannot be read, does not hold the stack, or holds it invalid */
  | 'rollback-target-invalid'
  /** a resume of a stack that is not paused or held */
  | 'not-held'
  /** the data folder belongs to another config, or cannot be read */
  | 'data-dir-owned'
  /** no host of that name in the engine config */
  | 'unknown-host'
  /** the stack has no service (job, hook) of that name, in Git or on the hosts */
  | 'unknown-service'
  /** more followed logs open than limits.logFollowers */
  | 'too-many-followers'
  /** no sync run of that id */
  | 'unknown-sync'
  /** no repo of that name in the engine config */
  | 'unknown-repo'
  /** a plan's ref (a branch, a ref, a commit SHA) that the repo's remote does not have */
  | 'unknown-ref'
  /** a value of the request cannot be used (a time that is neither ISO nor how long ago) */
  | 'invalid-request'
  /** an action handed to the leader by a follower: that leader stopped before it answered (src/engine/handoff.ts) */
  | 'leader-lost'
  /** an action asked of a follower while no engine leads (several engines on PostgreSQL) */
  | 'no-leader'
  | RequestRefusalCode;

/**
 * Why berth's HTTP server refused a request before any operation saw it, so that no web page the
 * user opens can drive berth (docs/api.md, "Browsers").
 */
export type RequestRefusalCode =
  /** an action asked from another site's page: an Origin not berth's own, or Sec-Fetch-Site other than same-origin */
  | 'cross-site'
  /** a body that is not JSON (Content-Type other than application/json) */
  | 'unsupported-media-type'
  /** a Host header naming none of the names berth answers to (listen, publicUrl, allowedHosts) */
  | 'host-not-allowed'
  /** more event streams from one client address than limits.eventStreams */
  | 'too-many-streams';

/** A request the engine cannot carry out, said so a person can act on it. */
export class EngineError extends Error {
  override name = 'EngineError';
  readonly code: EngineErrorCode;
  constructor(message: string, code: EngineErrorCode) {
    super(message);
    this.code = code;
  }
}
