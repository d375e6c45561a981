// Fencing (docs/how-it-works.md, "Running two engines"), on a real PostgreSQL and a real Docker
// daemon: an engine whose lease another engine has taken is refused the next step that would change
// a host, before Docker is asked, and the refusal is audited; alone on SQLite, nothing is fenced.
import Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DockerHost } from '../src/apply/docker-host.ts';
import { Registries } from '../src/apply/registries.ts';
import { openDatabase } from '../src/audit/db.ts';
import { AuditLog } from '../src/audit/log.ts';
import { openPostgres, type PostgresDb } from '../src/audit/pg.ts';
import { Cluster, FencedError } from '../src/engine/cluster.ts';
import { testLog } from './harness/berth.ts';
import { uniqueName, waitFor } from './harness/docker.ts';
import { createDatabase, sql } from './harness/postgres.ts';

const server = inject('postgres');
const docker = new Dockerode({ socketPath: inject('docker').socketPath });
let db: PostgresDb;
let target: { url: string; password: string };
let cluster: Cluster;

beforeAll(async () => {
  target = await createDatabase(server);
  db = openPostgres(target);
  cluster = new Cluster(db, { id: 'engine-a', version: 'test', leaseMs: 2000 }, testLog(), new AuditLog(db));
});
afterAll(() => {
  cluster?.stop();
  db?.close();
});

const network = (name: string) => ({ key: 'default', name, external: false, labels: {} });

describe('an engine whose lease was taken', () => {
  it('leads on its own, and may change the host', async () => {
    cluster.start();
    await waitFor(() => cluster.leading, { what: 'engine-a to lead' });
    const name = uniqueName('fenceok');
    const host = new DockerHost('test', docker, testLog(), Registries.none(), (step, h) => cluster.fence(step, { host: h }));
    await host.createNetwork(network(name), 'repo', 'stack');
    expect((await docker.listNetworks({ filters: { name: [name] } })).map((n) => n.Name)).toEqual([name]);
    await host.removeNetwork(name);
  });

  it('is refused its next step before Docker is asked, and the refusal is audited once', async () => {
    await waitFor(() => cluster.leading, { what: 'engine-a to lead' });
    // another engine took the lease (as it would once engine-a's had lapsed, engine-a paused meanwhile)
    await sql(target, `UPDATE leader_lease SET engine = 'engine-b', term = term + 1, since = now(), expires = now() + interval '1 hour'`);
    const name = uniqueName('fenced');
    const host = new DockerHost('test', docker, testLog(), Registries.none(), (step, h) => cluster.fence(step, { host: h }));
    await expect(host.createNetwork(network(name), 'repo', 'stack')).rejects.toThrow(FencedError);
    await expect(host.stop('0123456789ab')).rejects.toThrow(/no longer leads \(engine engine-b leads in term \d+\): refused to stop container 0123456789ab/);
    expect(await docker.listNetworks({ filters: { name: [name] } })).toEqual([]);
    const rows = await sql<{ kind: string; host: string; message: string }>(target, `SELECT kind, host, message FROM audit WHERE kind = 'engine.fenced'`);
    expect(rows).toEqual([
      {
        kind: 'engine.fenced',
        host: 'test',
        message: expect.stringMatching(/^engine engine-a \(term \d+\) no longer leads \(engine engine-b leads in term \d+\): refused to create network /),
      },
    ]);
    // and its lease worker sees it too: it follows
    await waitFor(() => !cluster.leading && cluster.view().self.role === 'follower', { what: 'engine-a to follow' });
    expect(cluster.view().leader?.id).toBe('engine-b');
  });
});

describe('alone on SQLite', () => {
  it('always leads, and fences nothing', () => {
    const lite = openDatabase(':memory:');
    const alone = new Cluster(lite, { id: 'solo', version: 'test', leaseMs: 10_000 }, testLog(), new AuditLog(lite));
    expect(alone.shared).toBe(false);
    expect(alone.leading).toBe(true);
    expect(() => alone.fence('create container x')).not.toThrow();
    expect(alone.view()).toMatchObject({ self: { id: 'solo', role: 'leader' }, leader: { id: 'solo' }, engines: [{ id: 'solo', role: 'leader' }] });
    lite.close();
  });
});
