/**
 * `GET /metrics`: Prometheus text (version 0.0.4), no auth. Each server has a prom-client Registry
 * of its own (never the global one), so that several engines in one process do not collide.
 *
 * The counters are fed from what berth already records: every row appended to the engine's audit
 * log (Engine.events 'audit'), the sync records those rows point at, and, at scrape time, the host
 * monitor's last statuses and the webhook deliveries table (deliveries that were ignored have no
 * audit row). Notifications are counted as the engine reports each delivery's end (Engine.events
 * 'notification'), and the replicas of a running rollout as the engine reports its progress
 * (Engine.events 'sync'). Nothing here changes what is recorded or how.
 */
import type { EventEmitter } from 'node:events';
import type { FastifyPluginAsync } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditRow } from '../audit/log.ts';
import type { DeliveryOutcome } from '../audit/deliveries.ts';
import type { NotificationRecord } from '../audit/notifications.ts';
import type { SyncStore } from '../audit/syncs.ts';
import type { EngineEvents } from '../engine/engine.ts';
import type { SyncEvent } from '../engine/events.ts';
import type { HostMonitor } from '../observe/hosts.ts';
import { FORGES } from './forges.ts';
import type { Db } from '../audit/db.ts';

/** What the metrics read; an Engine fits. */
export interface MetricsSource {
  db: Db;
  syncs: Pick<SyncStore, 'get'>;
  monitor: Pick<HostMonitor, 'status'>;
  events: EventEmitter<EngineEvents>;
  /** the notification targets, each counted from 0 */
  config?: { notifications: ReadonlyArray<{ name: string }> };
  /** whether this engine leads (always, alone on SQLite) */
  cluster?: { readonly leading: boolean };
}

export interface BerthMetrics {
  registry: Registry;
  /** Stops following the engine's audit rows. */
  stop(): void;
}

/** Seconds: syncs and rollouts take from about a second to many minutes. */
const DURATION_BUCKETS = [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const DELIVERY_OUTCOMES: DeliveryOutcome[] = ['accepted', 'rejected', 'ignored'];
/** How a notification delivery ends. */
const NOTIFICATION_ENDS = ['delivered', 'failed', 'dropped'] as const;

/** A sync started in this process: per service, the time of its first rollout batch and of its last step so far (ms). */
interface OpenSync {
  services: Map<string, { first: number; last: number }>;
}

/**
 * berth's metrics and the default Node process metrics, in a Registry of their own, following
 * `src.events` until stop(). `onError` hears of a failure to count a row (the row stays recorded).
 */
export function berthMetrics(src: MetricsSource, onError: (err: Error, row: AuditRow) => void = () => {}): BerthMetrics {
  const registry = new Registry();
  const registers = [registry];
  collectDefaultMetrics({ register: registry });

  const syncs = new Counter({
    name: 'berth_syncs_total',
    help: 'Syncs (apply runs of one stack) that ended, by outcome: succeeded, failed, rolledback, paused',
    labelNames: ['stack', 'outcome'] as const,
    registers,
  });
  const syncDuration = new Histogram({
    name: 'berth_sync_duration_seconds',
    help: 'Seconds from the start to the end of each sync started by this process',
    labelNames: ['stack'] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const rolloutDuration = new Histogram({
    name: 'berth_rollout_duration_seconds',
    help: "Seconds from a service's first rollout batch to its last step in that sync (services whose replicas were replaced)",
    labelNames: ['stack', 'service'] as const,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const driftCorrections = new Counter({
    name: 'berth_drift_corrections_total',
    help: 'Containers put back after a change by hand (drift.corrected audit rows)',
    labelNames: ['stack'] as const,
    registers,
  });
  const rollbacks = new Counter({
    name: 'berth_rollbacks_total',
    help: 'Rollbacks started: automatic (a failed rollout of a service) or manual (berth rollback, the API)',
    labelNames: ['stack', 'kind'] as const,
    registers,
  });
  const auditRows = new Counter({ name: 'berth_audit_rows_total', help: 'Audit rows this process appended since it started', registers });
  new Gauge({
    name: 'berth_leader',
    help: 'Whether this engine leads (1: it changes hosts) or follows another on the same database (0)',
    registers,
    collect() {
      this.set(src.cluster?.leading === false ? 0 : 1);
    },
  });
  new Gauge({
    name: 'berth_hosts_up',
    help: 'Hosts that answered their last check',
    registers,
    collect() {
      this.set(src.monitor.status().filter((h) => h.state === 'up').length);
    },
  });
  new Gauge({
    name: 'berth_host_up',
    help: 'Whether the host answered its last check (1) or not (0); hosts not checked yet are absent',
    labelNames: ['host'] as const,
    registers,
    collect() {
      this.reset();
      for (const h of src.monitor.status()) this.set({ host: h.name }, h.state === 'up' ? 1 : 0);
    },
  });
  // Read at scrape time: one range read of the rows added since the last scrape, by primary key.
  const newDeliveries = src.db.prepare('SELECT provider, outcome, count(*) AS n, max(id) AS last FROM deliveries WHERE id > ? GROUP BY provider, outcome');
  let seen = Number((src.db.prepare('SELECT coalesce(max(id), 0) AS last FROM deliveries').get() as { last: number }).last);
  const deliveries = new Counter({
    name: 'berth_webhook_deliveries_total',
    help: 'Webhook deliveries received since this process started, by provider and outcome (accepted, rejected, ignored); one per delivery and matched repo',
    labelNames: ['provider', 'outcome'] as const,
    registers,
    collect() {
      let rows: Array<{ provider: string; outcome: string; n: number; last: number }>;
      try {
        rows = newDeliveries.all(seen) as typeof rows;
      } catch {
        return; // the database does not answer (PostgreSQL out of reach): counted at a later scrape, the rest answered now
      }
      for (const r of rows) {
        this.inc({ provider: r.provider, outcome: r.outcome }, r.n);
        seen = Math.max(seen, r.last);
      }
    },
  });
  for (const provider of [...FORGES.keys(), 'registry']) for (const outcome of DELIVERY_OUTCOMES) deliveries.inc({ provider, outcome }, 0);
  const notifications = new Counter({
    name: 'berth_notifications_total',
    help: 'Notification deliveries this process ended, by target and outcome: delivered, failed (refused, or every retry used), dropped (a full queue)',
    labelNames: ['target', 'outcome'] as const,
    registers,
  });
  for (const t of src.config?.notifications ?? []) for (const outcome of NOTIFICATION_ENDS) notifications.inc({ target: t.name, outcome }, 0);
  const notified = (n: NotificationRecord) => {
    if ((NOTIFICATION_ENDS as readonly string[]).includes(n.outcome)) notifications.inc({ target: n.target, outcome: n.outcome });
  };

  const rolloutLabels = ['repo', 'stack', 'service'] as const;
  const replicasUpdated = new Gauge({
    name: 'berth_rollout_replicas_updated',
    help: 'Replicas of the service that the running rollout updated so far (the new container runs, and is healthy when waited for); removed when the rollout ends',
    labelNames: rolloutLabels,
    registers,
  });
  const replicasPlanned = new Gauge({
    name: 'berth_rollout_replicas_planned',
    help: 'Replicas of the service that the running rollout creates or replaces in all; removed when the rollout ends',
    labelNames: rolloutLabels,
    registers,
  });
  /** the label sets each running sync set, by sync id: removed when it finishes */
  const rollouts = new Map<number, Array<{ repo: string; stack: string; service: string }>>();
  const progressed = (e: SyncEvent) => {
    if (e.phase === 'progress' && e.services) {
      const sets = e.services.map((p) => ({ repo: e.repo ?? '', stack: e.stack, service: p.service }));
      e.services.forEach((p, i) => {
        replicasUpdated.set(sets[i]!, p.updated);
        replicasPlanned.set(sets[i]!, p.total);
      });
      rollouts.set(e.id, sets);
    } else if (e.phase === 'finished') {
      for (const labels of rollouts.get(e.id) ?? []) {
        replicasUpdated.remove(labels);
        replicasPlanned.remove(labels);
      }
      rollouts.delete(e.id);
    }
  };

  const open = new Map<number, OpenSync>();
  const observe = (row: AuditRow) => {
    auditRows.inc();
    const stack = row.stack ?? '';
    if (row.kind === 'drift.corrected') driftCorrections.inc({ stack });
    // The executor's rollback rows belong to a sync; engine.rollback's own does not.
    if (row.kind === 'rollback.started') rollbacks.inc({ stack, kind: row.syncId === undefined ? 'manual' : 'automatic' });
    if (row.syncId === undefined) return;
    const sync = open.get(row.syncId);
    if (row.kind === 'sync.started') {
      open.set(row.syncId, { services: new Map() });
    } else if (row.kind === 'sync.succeeded' || row.kind === 'sync.failed') {
      // The sync record is finished before this row is appended: it says how a failure ended.
      const rec = src.syncs.get(row.syncId);
      const outcome =
        rec && rec.outcome !== 'running'
          ? rec.outcome === 'succeeded'
            ? 'succeeded'
            : (rec.result ?? 'failed')
          : row.kind === 'sync.succeeded'
            ? 'succeeded'
            : 'failed';
      const name = rec?.stack ?? stack;
      syncs.inc({ stack: name, outcome });
      // Only syncs this process saw start: an interrupted one settled now would count the downtime.
      if (sync && rec?.finishedAt) syncDuration.observe({ stack: name }, (Date.parse(rec.finishedAt) - Date.parse(rec.startedAt)) / 1000);
      for (const [service, t] of sync?.services ?? []) rolloutDuration.observe({ stack: name, service }, (t.last - t.first) / 1000);
      open.delete(row.syncId);
    } else if (sync && row.service) {
      const t = Date.parse(row.time);
      const svc = sync.services.get(row.service);
      if (svc) svc.last = t;
      else if (row.kind === 'rollout.batch') sync.services.set(row.service, { first: t, last: t });
    }
  };
  // what this process appended and ran: another engine's rows and syncs (relayed) are that engine's to count
  const listener = (row: AuditRow, from?: string) => {
    if (from) return;
    try {
      observe(row);
    } catch (err) {
      onError(err as Error, row);
    }
  };
  src.events.on('audit', listener);
  src.events.on('notification', notified);
  // runs inside the engine's work: never throws
  const onSync = (e: SyncEvent, from?: string) => {
    if (from) return;
    try {
      progressed(e);
    } catch {
      // a gauge not set is a gauge not set: the rollout goes on
    }
  };
  src.events.on('sync', onSync);
  return {
    registry,
    stop: () => {
      src.events.off('audit', listener);
      src.events.off('notification', notified);
      src.events.off('sync', onSync);
    },
  };
}

/** `GET /metrics` as a fastify plugin: `app.register(metrics, { engine })`. */
export const metrics: FastifyPluginAsync<{ engine: MetricsSource }> = async (app, { engine }) => {
  const m = berthMetrics(engine, (err, row) => app.log.error({ err: err.message, row: row.id, kind: row.kind }, 'metrics: cannot count an audit row'));
  app.addHook('onClose', async () => m.stop());
  app.get('/metrics', async (_req, reply) => reply.type(m.registry.contentType).send(await m.registry.metrics()));
};

export default metrics;
