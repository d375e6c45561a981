/**
 * Every kind of audit row berth writes, and nothing else: the type of AuditRow.kind, the list the
 * dashboard's kind filter offers (served as /kinds.js by src/server/dashboard.ts) and the list in
 * docs/api.md ("Audit kinds"). test/audit-kinds.test.ts checks that each is written somewhere in
 * src/ and that nothing else is.
 */
export const AUDIT_KINDS = [
  // a stack's sync begins, with the plan's diff (also when a stack gone from Git is removed)
  'sync.started',
  // every step of a stack's sync is done
  'sync.succeeded',
  // a stack's sync stops at a step that failed, or one left unfinished by a crash is settled
  'sync.failed',
  // berth.yaml or a stack's files do not render at a commit: nothing of it is applied (once per commit and stack)
  'manifest.invalid',
  // a stack network is created on a host
  'network.created',
  // a stack volume is created on a host
  'volume.created',
  // a stack network no longer wanted is removed from a host
  'network.removed',
  // a service's image is built on a host (build:): the built image, and the build's args (secret-looking values masked), extra_hosts, network and target
  'image.built',
  // a replica's container is created where none was
  'container.created',
  // a replica's container is replaced by one for the new spec
  'container.replaced',
  // a container no longer wanted (gone from Git, scaled down, moved, a duplicate) is removed
  'container.removed',
  // a replacement is undone: the old container runs again under the replica's name
  'container.restored',
  // a container berth waits for (rolled out, rolled back, or one a dependent needs) runs and is healthy, or runs without a health check
  'container.healthy',
  // a container berth waits for exits, restarts, turns unhealthy or is not healthy in time
  'container.unhealthy',
  // a pre-sync or post-sync hook's container starts
  'job.started',
  // a job's container exits 0
  'job.succeeded',
  // a job's container exits non-zero, or is not done within its timeout
  'job.failed',
  // a batch of a service's rollout starts
  'rollout.batch',
  // more of a rollout's replicas fail than max_failure_ratio allows
  'rollout.failed',
  // a failed rollout stops there (failure_action: pause)
  'rollout.paused',
  // a failed rollout is rolled back (failure_action: rollback), or a person asks for a rollback
  'rollback.started',
  // a batch of a rollback starts
  'rollback.batch',
  // every replica a rollback touched runs again, or a manual rollback's sync ended well
  'rollback.succeeded',
  // a replica does not get ready after a rollback, or a manual rollback's sync failed
  'rollback.failed',
  // a change made by hand is found: what differs, live against desired
  'drift.detected',
  // a change made by hand is undone (selfHeal)
  'drift.corrected',
  // a person holds a stack where it is: polls change nothing until it is resumed
  'stack.paused',
  // a hold ends: a person resumes the stack, or a new commit ends it
  'stack.resumed',
  // a host stops answering: nothing is done on it until it answers
  'host.down',
  // a host has not answered for hostCheck.gracePeriod: its replicated replicas are placed elsewhere
  'host.lost',
  // a host that did not answer answers again
  'host.up',
  // an authenticated push webhook queues a pass of its repo
  'webhook.received',
  // a webhook delivery for a configured repo whose signature or token does not hold (one row per such repo)
  'webhook.rejected',
  // an operator asks the API for a sync, rollback, pause or resume (or one asked for cannot start)
  'api.action',
  // a followed image's tag (x-berth.watch-image) resolved to another digest: its replicas roll to it
  'image.updated',
  // the engine signs the chain's head with its audit key: the row's message is the checkpoint's JSON (src/audit/anchor.ts)
  'audit.checkpoint',
  // a notification (a webhook, a chat message, a commit status) could not be delivered: refused, or every retry used (src/notify/deliver.ts)
  'notification.failed',
  // the plan of a pull request was posted to a forge: its status and its comment (src/notify/deliver.ts)
  'plan.posted',
  // one of several engines on one database begins to lead (src/engine/cluster.ts): its id, its term and the engine it took over from
  'engine.leader',
  // an engine that no longer holds the lease was refused a step that would change a host (its id, its term, the leader's, the step)
  'engine.fenced',
] as const;

export type AuditKind = (typeof AUDIT_KINDS)[number];
