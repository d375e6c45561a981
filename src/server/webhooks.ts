/**
 * `POST /webhooks/:provider` (docs/how-it-works.md, "Webhooks"): a push from GitHub, GitLab,
 * Gitea/Forgejo, Bitbucket Cloud or any CI (`generic`) sets a pass of each configured repo it
 * matches going. Authenticated by the forge's signature (or token) against the repo's own
 * `webhookSecretFile`, and nothing else. The answer (202) comes before the sync; a push that
 * arrives while a pass of the repo waits to start joins it (coalesced); a redelivery does nothing
 * new. Every delivery is kept with what came of it and why (DeliveryStore), so that "the webhook
 * did nothing" can be answered from berth; one whose signature fails is audited (webhook.rejected)
 * at most once a minute per source address and provider, the rest summed up (src/server/rejections.ts).
 */
import type { FastifyError, FastifyPluginAsync } from 'fastify';
import { ConfigError, readSecretFile, type RepoConfig } from '../config.ts';
import type { Engine } from '../engine/engine.ts';
import { DeliveryStore, type DeliveryInput, type DeliveryRecord } from '../audit/deliveries.ts';
import type { ForgeType } from '../notify/config.ts';
import { FORGES, PayloadError, matchRepos, registryHook, type Delivery, type Forge, type PullRequest, type RegistryDelivery, type Verdict } from './forges.ts';
import { clip } from './browsers.ts';
import { RejectionWindows, type Unaudited } from './rejections.ts';

/** The largest payload taken (1 MiB); a larger one is answered with 413. */
export const WEBHOOK_BODY_LIMIT = 1024 * 1024;

export interface WebhookOptions {
  engine: Engine;
  /** bytes; default WEBHOOK_BODY_LIMIT */
  bodyLimit?: number;
}

type Row = Omit<DeliveryInput, 'status'>;

/** What a summary of untold rejections says of the latest one. */
interface Rejected {
  repo?: string;
  detail: string;
}

/** How often the windows of rejected deliveries that ended are summed up in the audit log (ms). */
const SUMMARY_EVERY_MS = 10_000;

/** A delivery id as messages quote it: a header's value, clipped. */
const idOf = (deliveryId: string | undefined) => (deliveryId === undefined ? '(no id)' : clip(deliveryId));

/** The rejections a window left untold, in words: "41 more github deliveries from 10.0.0.9 rejected since ...". */
function untold(u: Unaudited<Rejected>): string {
  return `${u.count} more ${u.provider} deliveries from ${u.address} rejected since ${new Date(u.since).toISOString()}, not audited one by one (GET /api/v1/deliveries?outcome=rejected lists each)`;
}

/**
 * The webhook routes, as an encapsulated fastify plugin: the raw body (needed for the HMAC) is kept
 * as a Buffer in this scope only. Reads every repo's webhook secret when registered: a secret file
 * that cannot be read, or is empty, stops the server from starting (ConfigError).
 */
export const webhooks: FastifyPluginAsync<WebhookOptions> = async (app, { engine, bodyLimit = WEBHOOK_BODY_LIMIT }) => {
  const secrets = webhookSecrets(engine.config.repos);
  const registrySecret = registryWebhookSecret(engine.config.registryWebhookSecretFile);
  const store = new DeliveryStore(engine.db);
  const log = engine.log.child({ component: 'webhooks' }); // not app.log's child (bound to component: 'http')

  // webhook.rejected rows: at most one per source address and provider a minute (src/server/rejections.ts)
  const windows = new RejectionWindows<Rejected>();
  /** Audits a rejected delivery's rows (one per repo it was checked for) when its window says so. */
  const auditRejected = (ip: string, provider: string, rows: Array<{ repo?: string; message: string }>, detail: string) => {
    const admitted = windows.admit(ip, provider, { repo: rows[0]?.repo, detail });
    if (!admitted.audit) return;
    const more = admitted.before ? `; and ${untold(admitted.before)}` : '';
    for (const r of rows) {
      engine.audit.append({ kind: 'webhook.rejected', repo: r.repo, trigger: 'webhook', actor: provider, outcome: 'error', message: `${r.message}${more}` });
    }
  };
  const summarize = (all: boolean) => {
    for (const u of windows.ended({ all })) {
      try {
        engine.audit.append({
          kind: 'webhook.rejected',
          repo: u.last.repo,
          trigger: 'webhook',
          actor: u.provider,
          outcome: 'error',
          message: `${untold(u)}; the last: ${u.last.detail}`,
        });
      } catch (err) {
        log.error({ provider: u.provider, ip: u.address, count: u.count, err: (err as Error).message }, 'cannot audit the rejected deliveries');
      }
    }
  };
  const summaries = setInterval(() => summarize(false), SUMMARY_EVERY_MS);
  summaries.unref();
  app.addHook('onClose', async () => {
    clearInterval(summaries);
    summarize(true);
  });

  /**
   * The pass an accepted delivery asks of a repo: its webhook.received row (`message`: which
   * delivery, what it pushed), its log line, and the pass itself, not awaited: the sender gets its
   * answer now; the pass's own rows go to the audit log.
   */
  const startPass = (provider: string, deliveryId: string | undefined, repo: string, actor: string, message: string, logged: Record<string, unknown>) => {
    const delivery = clip(deliveryId ?? '');
    engine.audit.append({ kind: 'webhook.received', repo, trigger: 'webhook', actor, message });
    log.info({ provider, delivery, repo, ...logged }, 'webhook accepted');
    engine.syncRepo(repo, { trigger: 'webhook', actor }).catch((err: unknown) => {
      log.error({ provider, repo, delivery, err: (err as Error).message }, 'the pass a webhook asked for failed');
    });
  };

  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const provider = (req.params as { provider?: string }).provider ?? '';
    const forge = FORGES.get(provider);
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE' && forge) {
      const detail = `the body is larger than ${bodyLimit} bytes, the most berth takes from a webhook`;
      const row = store.record({ provider, deliveryId: forge.deliveryId(req.headers), outcome: 'rejected', reason: 'body too large', detail, status: 413 });
      log.warn({ provider, delivery: clip(row.deliveryId ?? '') }, `webhook rejected: ${detail}`);
      return reply.code(413).send({ error: detail, delivery: row.id });
    }
    if (err.statusCode && err.statusCode < 500) return reply.code(err.statusCode).send({ error: err.message });
    log.error({ provider, err: err.message }, 'webhook failed');
    return reply.code(500).send({ error: `berth could not handle the delivery: ${err.message}` });
  });

  // A registry's push notification: a pass of each repo that follows a pushed tag (x-berth.watch-image).
  app.post('/webhooks/registry', { bodyLimit }, async (req, reply) => {
    const provider = 'registry';
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const deliveryId = registryHook.deliveryId(req.headers, body);
    const base: Row = { provider, deliveryId, event: 'push', outcome: 'ignored' };
    const refuse = (status: 401 | 400, reason: DeliveryInput['reason'], detail: string, secretFile?: string) => {
      const row = store.record({ ...base, outcome: 'rejected', reason, detail, status });
      if (status === 401) auditRejected(req.ip, provider, [{ message: `registry delivery ${idOf(deliveryId)} rejected: ${detail}` }], detail);
      // the file is named in berth's own log only: an answer or a row names no path
      log.warn({ provider, delivery: clip(deliveryId ?? ''), ip: req.ip, secretFile }, `webhook rejected: ${detail}`);
      return reply.code(status).send({ error: detail, delivery: row.id });
    };
    if (registrySecret === undefined) {
      return refuse(
        401,
        'no webhook secret',
        'berth has no registryWebhookSecretFile, so it takes no registry webhooks: give it one, and the same secret to the registry',
      );
    }
    const verdict = registryHook.verify(registrySecret, req.headers, body);
    if (verdict !== 'ok') {
      return refuse(
        401,
        verdict,
        verdict === 'no signature'
          ? 'no X-Berth-Signature or Authorization: Bearer header: sign the body with the registry webhook secret (its registryWebhookSecretFile), or send that secret as a bearer token'
          : 'the signature (or bearer token) does not match the registry webhook secret (its registryWebhookSecretFile)',
        engine.config.registryWebhookSecretFile,
      );
    }
    let d: RegistryDelivery;
    try {
      d = registryHook.parse(req.headers, body);
    } catch (err) {
      if (!(err instanceof PayloadError)) throw err;
      return refuse(400, 'bad payload', err.message);
    }
    const ignored = (reason: DeliveryInput['reason'], detail: string) => {
      const row = store.record({ ...base, event: d.event, reason, detail, status: 200 });
      log.info({ provider, delivery: clip(deliveryId ?? ''), reason }, `webhook ignored: ${detail}`);
      return reply.code(200).send({ accepted: false, delivery: row.id, reason, message: detail });
    };
    if (d.pushes.length === 0)
      return ignored('not a push', 'the registry sent no push of a tag (a pull, a blob, or a manifest pushed by digest): nothing to look at');
    const images = d.pushes.map((p) => p.image + (p.digest ? ` (${p.digest.slice(0, 19)})` : '')).join(', ');
    const repos = engine.followersOf(d.pushes.map((p) => p.image));
    if (repos.length === 0) return ignored('no repo matches', `no service follows the tag of ${images} (x-berth.watch-image)`);
    const actor = d.pusher ? `${provider}:${d.pusher}` : provider;
    const rows = repos.map((repo) => {
      if (deliveryId && store.wasAccepted(provider, deliveryId, repo)) {
        return store.record({
          ...base,
          repo,
          reason: 'duplicate',
          detail: `delivery ${idOf(deliveryId)} was accepted before: a redelivery starts no second pass`,
          status: 200,
        });
      }
      const coalesced = engine.passQueued(repo);
      const detail = `${images} pushed; repo ${repo} follows it: ${coalesced ? 'joins the pass already queued' : 'a pass is queued'}, which resolves the tag`;
      const row = store.record({ ...base, repo, outcome: 'accepted', ...(coalesced ? { reason: 'coalesced' as const } : {}), detail, status: 202 });
      startPass(provider, deliveryId, repo, actor, `registry delivery ${idOf(deliveryId)}: ${detail}`, { images, coalesced });
      return row;
    });
    const accepted = rows.filter((r) => r.outcome === 'accepted');
    if (accepted.length === 0) return reply.code(200).send({ accepted: false, delivery: rows[0]!.id, reason: 'duplicate', message: rows[0]!.detail });
    return reply.code(202).send({ accepted: true, delivery: accepted[0]!.id, repos: accepted.map((r) => r.repo) });
  });

  app.post<{ Params: { provider: string } }>(
    '/webhooks/:provider',
    {
      bodyLimit,
      // before the body is read: an unknown provider is 404 whatever it sends
      onRequest: async (req, reply) => {
        if (!FORGES.has(req.params.provider)) {
          return reply.code(404).send({ error: `unknown webhook provider '${req.params.provider}': use one of ${[...FORGES.keys()].join(', ')}` });
        }
      },
    },
    async (req, reply) => {
      const provider = req.params.provider;
      const forge = FORGES.get(provider)!;
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const headers = req.headers;
      const send = (status: number, rows: DeliveryRecord[], extra: Record<string, unknown> = {}) => {
        const accepted = rows.filter((r) => r.outcome === 'accepted');
        if (accepted.length) return reply.code(status).send({ accepted: true, delivery: accepted[0]!.id, repos: accepted.map((r) => r.repo), ...extra });
        const detail = rows.map((r) => r.detail).join('; ');
        if (status >= 400) return reply.code(status).send({ error: detail, delivery: rows[0]?.id });
        return reply.code(status).send({ accepted: false, delivery: rows[0]?.id, reason: rows[0]?.reason, message: detail, ...extra });
      };
      const keep = (status: number, rows: Row[]) => rows.map((r) => store.record({ ...r, status }));
      let d: Delivery;
      try {
        d = forge.parse(headers, body);
      } catch (err) {
        if (!(err instanceof PayloadError)) throw err;
        const rows = keep(400, [{ provider, deliveryId: forge.deliveryId(headers, body), outcome: 'rejected', reason: 'bad payload', detail: err.message }]);
        log.warn({ provider, delivery: clip(rows[0]!.deliveryId ?? '') }, `webhook rejected: ${err.message}`);
        return send(400, rows);
      }
      const base: Row = { provider, deliveryId: d.deliveryId, event: d.event, outcome: 'ignored' };
      const ignored = (rows: Row[], extra?: Record<string, unknown>) => {
        const kept = keep(200, rows);
        log.info(
          { provider, delivery: clip(d.deliveryId ?? ''), reasons: kept.map((r) => r.reason) },
          `webhook ignored: ${kept.map((r) => r.detail).join('; ')}`,
        );
        return send(200, kept, extra);
      };

      if (d.kind === 'other') {
        return ignored([
          {
            ...base,
            reason: 'not a push',
            detail: `${forge.title} sent a ${clip(d.event)} event: berth acts on pushes and pull requests only (send it those events only)`,
          },
        ]);
      }
      const candidates = matchRepos(engine.config.repos, d.repoUrls);
      if (candidates.length === 0) {
        const detail = `no configured repo has the URL ${d.repoUrls.join(' or ')}`;
        if (d.kind === 'ping') return ignored([{ ...base, reason: 'ping', detail: `pong; but ${detail}` }], { pong: true });
        return ignored([{ ...base, reason: 'no repo matches', detail }]);
      }

      // Authenticated against each matching repo's own secret: any one that holds makes the delivery genuine for that repo.
      const checked = candidates.map((repo) => ({ repo, verdict: verify(forge, secrets.get(repo.name), headers, body) }));
      const trusted = checked.filter((c) => c.verdict === 'ok').map((c) => c.repo);
      if (trusted.length === 0) {
        const rows = keep(
          401,
          checked.map(({ repo, verdict }) => ({
            ...base,
            repo: repo.name,
            outcome: 'rejected',
            reason: verdict as Exclude<Verdict, 'ok'>,
            detail: rejection(forge, repo, verdict),
          })),
        );
        // the reason only: never the secret, nor the signature that was sent, nor the secret's file
        auditRejected(
          req.ip,
          provider,
          rows.map((r) => ({ repo: r.repo, message: `${provider} delivery ${idOf(r.deliveryId)} (${clip(r.event ?? '')}) rejected: ${r.detail}` })),
          rows.map((r) => r.detail).join('; '),
        );
        const files = checked.map(({ repo }) => repo.webhookSecretFile).filter(Boolean);
        log.warn(
          { provider, delivery: clip(d.deliveryId ?? ''), ip: req.ip, repos: rows.map((r) => r.repo), secretFiles: files },
          `webhook rejected: ${rows.map((r) => r.detail).join('; ')}`,
        );
        return send(401, rows);
      }
      if (d.kind === 'ping') {
        return ignored(
          trusted.map((repo) => ({ ...base, repo: repo.name, reason: 'ping', detail: `pong: the signature holds for repo ${repo.name}` })),
          { pong: true },
        );
      }

      if (d.kind === 'pull') return pulled(d, d.pull!, trusted);

      // A push: per trusted repo, the branch it watches must be one the push moved.
      const actor = d.pusher ? `${provider}:${d.pusher}` : provider;
      const decided = trusted.map((repo): Row & { sync?: boolean } => {
        const push = d.pushes.find((p) => p.branch === repo.branch);
        const row = { ...base, repo: repo.name, branch: push?.branch ?? d.pushes[0]?.branch, commitSha: push?.after ?? d.pushes[0]?.after };
        if (!push) {
          const moved = d.pushes.map((p) => p.branch).join(', ') || 'no branch (a tag, or a deleted branch)';
          return { ...row, reason: 'branch not watched', detail: `the push moved ${moved}; repo ${repo.name} watches ${repo.branch}` };
        }
        if (d.deliveryId && store.wasAccepted(provider, d.deliveryId, repo.name)) {
          return { ...row, reason: 'duplicate', detail: `delivery ${idOf(d.deliveryId)} was accepted before: a redelivery starts no second sync` };
        }
        // Decided and acted on in one go (no await in between): the pass still waits, so this push joins it.
        if (engine.passQueued(repo.name)) {
          return {
            ...row,
            outcome: 'accepted',
            reason: 'coalesced',
            detail: `joins the pass of ${repo.name} already queued, which fetches the branch's newest commit`,
            sync: true,
          };
        }
        return { ...row, outcome: 'accepted', sync: true };
      });
      if (!decided.some((r) => r.sync)) return ignored(decided);
      const rows = decided.map(({ sync, ...row }) => {
        const kept = store.record({ ...row, status: 202 });
        if (sync) startSync(kept);
        return kept;
      });
      const coalesced = rows.every((r) => r.outcome !== 'accepted' || r.reason === 'coalesced');
      return send(202, rows, coalesced ? { reason: 'coalesced' } : {});

      /**
       * A pull request opened, reopened or moved: per trusted repo, a plan of its head, when it would
       * merge into the branch the repo watches and a forge target of this forge takes the repo. The
       * plan is made and posted after the answer (docs/notifications.md, "Plans on pull requests").
       */
      function pulled(d: Delivery, pull: PullRequest, repos: RepoConfig[]) {
        const forgeType = provider as ForgeType;
        const what = `pull request #${pull.number} (${clip(pull.action)})`;
        const decided = repos.map((repo): Row & { plan?: boolean } => {
          const row = { ...base, repo: repo.name, branch: pull.baseBranch, commitSha: pull.headSha };
          if (!pull.planned) {
            return {
              ...row,
              reason: 'action not planned',
              detail: `${what}: berth plans a pull request when it is opened, reopened or its head moves`,
            };
          }
          if (pull.baseBranch !== repo.branch) {
            return {
              ...row,
              reason: 'base branch not watched',
              detail: `${what} would merge into ${clip(pull.baseBranch)}; repo ${repo.name} watches ${repo.branch}`,
            };
          }
          const targets = engine.notifier.planTargets(repo.name, forgeType).map((t) => t.name);
          if (targets.length === 0) {
            return {
              ...row,
              reason: 'no plan target',
              detail: `repo ${repo.name} has no ${forgeType} notification target to post the plan of ${what} through (docs/notifications.md, "Plans on pull requests")`,
            };
          }
          if (d.deliveryId && store.wasAccepted(provider, d.deliveryId, repo.name)) {
            return { ...row, reason: 'duplicate', detail: `delivery ${idOf(d.deliveryId)} was accepted before: a redelivery makes no second plan` };
          }
          return {
            ...row,
            outcome: 'accepted',
            detail: `${what} at ${pull.headSha.slice(0, 12)}: its plan is made and posted through ${targets.join(', ')}`,
            plan: true,
          };
        });
        if (!decided.some((r) => r.plan)) return ignored(decided);
        const rows = decided.map(({ plan, ...row }) => {
          const kept = store.record({ ...row, status: 202 });
          if (plan) {
            log.info(
              { provider, delivery: clip(d.deliveryId ?? ''), repo: kept.repo, pull: pull.number, commit: pull.headSha.slice(0, 7) },
              'webhook accepted: a plan',
            );
            void engine.planPull(kept.repo!, forgeType, pull);
          }
          return kept;
        });
        return send(202, rows);
      }

      function startSync(r: DeliveryRecord): void {
        const what = `${provider} delivery ${idOf(r.deliveryId)}: push of ${r.branch}${r.commitSha ? ` at ${r.commitSha}` : ''}${d.pusher ? ` by ${d.pusher}` : ''}`;
        const coalesced = r.reason === 'coalesced';
        startPass(provider, r.deliveryId, r.repo!, actor, `${what}; ${coalesced ? 'joins the pass already queued' : 'a pass is queued'}`, {
          commit: r.commitSha?.slice(0, 7),
          coalesced,
        });
      }
    },
  );
};

/** The verdict for one repo: a repo without a webhook secret takes no webhooks. */
function verify(forge: Forge, secret: string | undefined, headers: Parameters<Forge['verify']>[1], body: Buffer): Verdict | 'no webhook secret' {
  return secret === undefined ? 'no webhook secret' : forge.verify(secret, headers, body);
}

/**
 * Why a delivery was refused for a repo, in words a person can act on: never the secret or the
 * signature, nor the secret's file (the answer goes to whoever sent the delivery; berth's own log
 * names the file).
 */
function rejection(forge: Forge, repo: RepoConfig, verdict: Verdict | 'no webhook secret'): string {
  switch (verdict) {
    case 'no webhook secret':
      return `repo ${repo.name} has no webhookSecretFile, so it takes no webhooks: give it one, and the same secret to the ${forge.title} webhook`;
    case 'no signature':
      return `no ${forge.signatureHeader} header: set the ${forge.title} webhook's secret to the webhook secret of repo ${repo.name} (its webhookSecretFile)`;
    default:
      return `the ${forge.signatureHeader} does not match the webhook secret of repo ${repo.name} (its webhookSecretFile): the ${forge.title} webhook's secret differs from it`;
  }
}

/** The secret of the registry webhook, when the config names one (read now: an unreadable or empty file stops the server). */
function registryWebhookSecret(file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  const secret = readSecretFile(file, 'the registry webhook secret (registryWebhookSecretFile)');
  if (!secret)
    throw new ConfigError(
      `the registry webhook secret in ${file} is empty: put a long random string there (openssl rand -hex 32) and the same on the registry`,
    );
  return secret;
}

/** Every repo's webhook secret, by repo name (repos without webhookSecretFile have none). */
function webhookSecrets(repos: readonly RepoConfig[]): Map<string, string> {
  const secrets = new Map<string, string>();
  for (const r of repos) {
    if (!r.webhookSecretFile) continue;
    const secret = readSecretFile(r.webhookSecretFile, `the webhook secret of repo ${r.name}`);
    if (!secret)
      throw new ConfigError(
        `the webhook secret of repo ${r.name} in ${r.webhookSecretFile} is empty: put a long random string there (openssl rand -hex 32) and the same on the forge`,
      );
    secrets.set(r.name, secret);
  }
  return secrets;
}
