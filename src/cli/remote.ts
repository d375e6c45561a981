/**
 * The operations (src/engine/ops.ts) over a running berth's API (docs/api.md): what the CLI uses
 * when BERTH_URL is set. A refusal comes back as an ApiError carrying the server's code.
 */
import type { Page } from '../audit/db.ts';
import type { DeliveryFilter, DeliveryRecord } from '../audit/deliveries.ts';
import type { AuditRow } from '../audit/log.ts';
import type { SyncFilter, SyncRecord } from '../audit/syncs.ts';
import { pipeline, Readable, Transform } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { SyncEvent } from '../engine/events.ts';
import type {
  ActionOptions,
  ActionOutcome,
  AuditQuery,
  HostSummary,
  HostView,
  LogQuery,
  LogStream,
  Operations,
  StackStats,
  StackView,
  SyncReport,
  SyncView,
} from '../engine/ops.ts';
import { LineSplitter, type LogReplica } from '../engine/log-lines.ts';
import type { RepoPlan } from '../engine/plans.ts';
import { ApiError, type ApiClient } from './client.ts';
import type { ClusterView } from '../engine/cluster.ts';

const at = (name: string) => encodeURIComponent(name);

export class RemoteOps implements Operations {
  readonly #api: ApiClient;

  constructor(api: ApiClient) {
    this.#api = api;
  }

  /** where the server is, for messages */
  get url(): string {
    return this.#api.url;
  }

  async stacks(): Promise<StackView[]> {
    return (await this.#api.get<{ stacks: StackView[] }>('/stacks')).stacks;
  }

  stack(name: string): Promise<StackView> {
    return this.#api.get<StackView>(`/stacks/${at(name)}`);
  }

  stats(name: string): Promise<StackStats> {
    return this.#api.get<StackStats>(`/stacks/${at(name)}/stats`);
  }

  async cluster(): Promise<ClusterView> {
    return this.#api.get<ClusterView>('/cluster');
  }

  async hosts(): Promise<HostSummary[]> {
    return (await this.#api.get<{ hosts: HostSummary[] }>('/hosts')).hosts;
  }

  host(name: string): Promise<HostView> {
    return this.#api.get<HostView>(`/hosts/${at(name)}`);
  }

  async syncs(filter: SyncFilter): Promise<Page<SyncRecord>> {
    const { syncs, nextCursor } = await this.#api.get<{ syncs: SyncRecord[]; nextCursor?: number }>('/syncs', { ...filter });
    return { rows: syncs, nextCursor };
  }

  sync(id: number): Promise<SyncView> {
    return this.#api.get<SyncView>(`/syncs/${id}`);
  }

  audit(filter: AuditQuery): Promise<Page<AuditRow>> {
    return this.#api.get<Page<AuditRow>>('/audit', { ...filter });
  }

  async deliveries(filter: DeliveryFilter): Promise<Page<DeliveryRecord>> {
    const { deliveries, nextCursor } = await this.#api.get<{ deliveries: DeliveryRecord[]; nextCursor?: number }>('/deliveries', { ...filter });
    return { rows: deliveries, nextCursor };
  }

  async syncStack(name: string, { wait }: ActionOptions): Promise<ActionOutcome | undefined> {
    return (await this.#api.post<{ outcome?: ActionOutcome }>(`/stacks/${at(name)}/sync`, { wait })).outcome;
  }

  /**
   * Every stack the server lists (or `stack`), each its own sync, grouped by repo. A stack the
   * server refuses (one only left on the hosts) is reported failed with its message; it does not
   * stop the others.
   */
  async syncAll(opts: ActionOptions & { stack?: string }): Promise<SyncReport[]> {
    const stacks = opts.stack ? [{ name: opts.stack, repo: '' }] : await this.stacks();
    const answers = await Promise.allSettled(stacks.map((s) => this.syncStack(s.name, opts)));
    const reports = new Map<string, SyncReport>();
    stacks.forEach((s, i) => {
      const a = answers[i]!;
      if (a.status === 'rejected' && !(a.reason instanceof ApiError && a.reason.exitCode === 1)) throw a.reason;
      const outcome: SyncReport['stacks'][number] =
        a.status === 'fulfilled'
          ? (a.value ?? { stack: s.name, status: 'started' })
          : { stack: s.name, status: 'failed', errors: [(a.reason as Error).message] };
      const report = reports.get(s.repo) ?? { repo: s.repo, stacks: [] };
      report.stacks.push(outcome);
      reports.set(s.repo, report);
    });
    return [...reports.values()];
  }

  async rollback(name: string, { to, wait }: ActionOptions & { to?: string }): Promise<ActionOutcome | undefined> {
    return (await this.#api.post<{ outcome?: ActionOutcome }>(`/stacks/${at(name)}/rollback`, { commit: to, wait })).outcome;
  }

  async pause(name: string): Promise<void> {
    await this.#api.post(`/stacks/${at(name)}/pause`);
  }

  async resume(name: string): Promise<void> {
    await this.#api.post(`/stacks/${at(name)}/resume`);
  }

  /** The server's event stream (GET /api/v1/events), its `sync` events only. */
  follow(onEvent: (e: SyncEvent) => void): Promise<() => void> {
    return this.#api.stream('/events', (m) => {
      if (m.event !== 'sync') return;
      try {
        onEvent(JSON.parse(m.data) as SyncEvent);
      } catch {
        // not JSON: not an event this berth sends
      }
    });
  }

  plan(repo: string, ref: string): Promise<RepoPlan> {
    return this.#api.post<RepoPlan>(`/repos/${at(repo)}/plan`, { ref });
  }

  /** The answer's JSON lines (docs/api.md, "Logs"): the first one names the replicas, each other is a record. */
  async logs(name: string, q: LogQuery): Promise<LogStream> {
    const abort = new AbortController();
    const query = {
      service: q.service,
      host: q.host,
      since: q.since,
      tail: q.tail,
      follow: q.follow ? 'true' : undefined,
      timestamps: q.timestamps ? 'true' : undefined,
    };
    const body = await this.#api.read(`/stacks/${at(name)}/logs`, query, 'application/x-ndjson', abort.signal);
    const splitter = new LineSplitter(4 << 20); // a record is one line of a line at most 64 KiB: more is no answer of berth
    let header: { resolve: (r: LogReplica[]) => void; reject: (e: Error) => void } | undefined;
    const replicas = new Promise<LogReplica[]>((resolve, reject) => (header = { resolve, reject }));
    const notBerth = (what: string) => new ApiError(`${this.#api.url} answered the logs of ${name} with ${what}: is it berth?`, 2);
    const parse = new Transform({
      readableObjectMode: true,
      transform(chunk: Buffer, _enc, done) {
        try {
          for (const line of splitter.push(chunk)) {
            if (!line) continue;
            const value = JSON.parse(line) as unknown;
            if (!header) this.push(value);
            else if (Array.isArray((value as { replicas?: unknown }).replicas)) {
              header.resolve((value as { replicas: LogReplica[] }).replicas);
              header = undefined;
            } else throw notBerth('no list of replicas first');
          }
          done();
        } catch (err) {
          done(err instanceof SyntaxError ? notBerth('a line that is not JSON') : (err as Error));
        }
      },
      flush(done) {
        done(header ? notBerth('nothing') : undefined);
      },
    });
    const records = pipeline(Readable.fromWeb(body as WebReadableStream<Uint8Array>), parse, (err) => {
      if (err && header) header.reject(err instanceof ApiError ? err : new ApiError(`the logs of ${name} from ${this.#api.url}: ${err.message}`, 2));
    });
    records.on('close', () => abort.abort());
    return { replicas: await replicas, records };
  }
}
