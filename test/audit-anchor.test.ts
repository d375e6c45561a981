// The audit log's anchoring (docs/how-it-works.md, "The audit log"): signed checkpoints of the
// chain's head, what `berth audit verify` proves with them (a rewritten chain, a forged checkpoint,
// a log cut short all fail), bundles checked without the database, and `berth init`.
import { generateKeyPairSync } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AuditSigner,
  checkAnchors,
  generateAuditKey,
  keyIdOf,
  loadAuditSigner,
  namedRows,
  parseCheckpoint,
  type CheckpointEntry,
} from '../src/audit/anchor.ts';
import { Checkpointer, checkpointDue, CHECKPOINT_RULE } from '../src/audit/checkpoint.ts';
import { openDatabase, type SqliteDb } from '../src/audit/db.ts';
import { formatAuditTable } from '../src/audit/format.ts';
import { AuditLog, GENESIS_HASH, rowHash, verifyChain, type AuditRow } from '../src/audit/log.ts';
import { verifyBundle, verifyLog, type AuditBundle } from '../src/audit/proof.ts';
import { loadConfig } from '../src/config.ts';
import { Engine } from '../src/engine/engine.ts';
import { capturedLogger, freePort, runCli, testLog, writeConfig } from './harness/berth.ts';
import { waitFor } from './harness/docker.ts';

const newSigner = () => new AuditSigner(generateKeyPairSync('ed25519').privateKey);
const noStackTrace = (s: string) => expect(s).not.toMatch(/\n\s+at /);

// ---- plain data: a chain as log.ts computes it ----

/** Appends a row to a chain held in memory, hashed and chained as AuditLog.append does. */
function push(rows: AuditRow[], fields: Partial<AuditRow> = {}): AuditRow {
  const prev = rows.at(-1);
  const id = (prev?.id ?? 0) + 1;
  const row: Omit<AuditRow, 'hash'> = {
    id,
    time: new Date(Date.UTC(2024, 4, 1, 10, 0, id)).toISOString(),
    kind: 'container.created',
    actor: 'berth',
    outcome: 'ok',
    message: `event ${id}`,
    ...fields,
    prevHash: prev?.hash ?? GENESIS_HASH,
  };
  const stored = { ...row, hash: rowHash(row) };
  rows.push(stored);
  return stored;
}

function chainOf(n: number, rows: AuditRow[] = []): AuditRow[] {
  for (let i = 0; i < n; i++) push(rows);
  return rows;
}

/** A checkpoint row of the chain's head, as the engine appends it. */
function pushCheckpoint(rows: AuditRow[], signer: AuditSigner, time = new Date('2024-05-01T11:00:00Z')): AuditRow {
  return push(rows, { kind: 'audit.checkpoint', outcome: 'info', message: JSON.stringify(signer.checkpoint(rows.at(-1)!, time)) });
}

/** Rewrites the chain from row `id` on as someone holding the database (not the key) would: the edit, then every hash again. */
function rewrite(rows: AuditRow[], id: number, change: Partial<AuditRow>): AuditRow[] {
  const out = rows.slice(0, id - 1);
  for (const r of rows.slice(id - 1)) {
    const { hash: _h, prevHash: _p, ...rest } = r;
    push(out, r.id === id ? { ...rest, ...change } : rest);
  }
  return out;
}

const logEntries = (rows: AuditRow[]): CheckpointEntry[] =>
  rows.filter((r) => r.kind === 'audit.checkpoint').map((r) => ({ where: `row ${r.id}`, logRow: r.id, text: r.message! }));

/** checkAnchors() over a chain held in memory. */
function anchorsOf(rows: AuditRow[], trusted: AuditSigner[], more: CheckpointEntry[] = []) {
  expect(verifyChain(rows).ok).toBe(true);
  const checkpoints = [...logEntries(rows), ...more];
  const named = namedRows(checkpoints);
  const hashes = new Map(rows.filter((r) => named.has(r.id)).map((r) => [r.id, r.hash]));
  return checkAnchors({ end: rows.length, hashes, checkpoints, trusted: trusted.map((s) => s.trusted) });
}

describe('checkpointDue', () => {
  const rule = { everyRows: 100, everyMs: 600_000 };
  const since = 1_000_000;
  it.each([
    ['an empty log', { headId: undefined, now: since + 10 * 600_000 }, false],
    ['no checkpoint yet, few rows, soon after start', { headId: 5, now: since + 1000 }, false],
    ['no checkpoint yet, 100 rows', { headId: 100, now: since }, true],
    ['no checkpoint yet, rows, everyMs after start', { headId: 1, now: since + 600_000 }, true],
    ['the head is the last checkpoint', { headId: 40, last: { id: 40, time: since }, now: since + 10 * 600_000 }, false],
    ['99 rows after the checkpoint', { headId: 140, last: { id: 41, time: since }, now: since + 1000 }, false],
    ['100 rows after the checkpoint', { headId: 141, last: { id: 41, time: since }, now: since + 1000 }, true],
    ['one row, the checkpoint everyMs old', { headId: 42, last: { id: 41, time: since }, now: since + 600_000 }, true],
    ['one row, the checkpoint just younger than everyMs', { headId: 42, last: { id: 41, time: since }, now: since + 599_999 }, false],
  ])('%s', (_, s, due) => {
    expect(checkpointDue({ ...s, since, rule })).toBe(due);
  });

  it('is every 100 rows or 10 minutes by default', () => {
    expect(CHECKPOINT_RULE).toEqual(rule);
  });
});

describe('checkpoints (plain data)', () => {
  const signer = newSigner();

  it('anchor the rows up to the one they signed; rows after it are not yet anchored', () => {
    const rows = chainOf(20);
    pushCheckpoint(rows, signer); // row 21 signs row 20
    chainOf(10, rows); // rows 22-31
    const report = anchorsOf(rows, [signer]);
    expect(report).toEqual({
      checked: 1,
      valid: 1,
      unchecked: 0,
      problems: [],
      last: { row: 20, time: '2024-05-01T11:00:00.000Z', keyId: signer.keyId, where: 'row 21', logRow: 21 },
      unanchored: { from: 21, to: 31 },
    });
    // the newest of several checkpoints is the one reported
    pushCheckpoint(rows, signer, new Date('2024-05-01T12:00:00Z'));
    expect(anchorsOf(rows, [signer])).toMatchObject({ checked: 2, valid: 2, last: { row: 31, logRow: 32 }, unanchored: { from: 32, to: 32 } });
  });

  it('prove nothing without a trusted key: they are counted as unchecked', () => {
    const rows = chainOf(3);
    pushCheckpoint(rows, signer);
    expect(anchorsOf(rows, [])).toEqual({ checked: 0, valid: 0, unchecked: 1, problems: [], unanchored: { from: 1, to: 4 } });
    expect(anchorsOf([], [signer])).toEqual({ checked: 0, valid: 0, unchecked: 0, problems: [] });
  });

  it('fail once the chain before them is rewritten with consistent hashes', () => {
    const rows = chainOf(20);
    pushCheckpoint(rows, signer);
    chainOf(5, rows);
    const forged = rewrite(rows, 7, { message: 'nothing happened' });
    expect(verifyChain(forged)).toEqual({ ok: true, rows: 26 }); // the chain alone cannot tell
    const report = anchorsOf(forged, [signer]);
    expect(report.valid).toBe(0);
    expect(report.last).toBeUndefined();
    expect(report.unanchored).toEqual({ from: 1, to: 26 });
    expect(report.problems).toEqual([
      { code: 'hash-mismatch', where: 'row 21', row: 20, message: expect.stringMatching(/^row 21: row 20 no longer has the hash the checkpoint signed/) },
    ]);
  });

  it('fail when forged: signed by another key, or claiming the trusted key without its signature', () => {
    const mallory = newSigner();
    const rows = chainOf(5);
    pushCheckpoint(rows, mallory); // row 6
    const real = JSON.parse(JSON.stringify(mallory.checkpoint(rows.at(-1)!, new Date()))) as Record<string, unknown>;
    push(rows, { kind: 'audit.checkpoint', message: JSON.stringify({ ...real, keyId: signer.keyId }) }); // row 7
    const report = anchorsOf(rows, [signer]);
    expect(report.problems.map((p) => [p.code, p.where])).toEqual([
      ['unknown-key', 'row 6'],
      ['bad-signature', 'row 7'],
    ]);
    expect(report.problems[0]!.message).toContain(`signed by key ${mallory.keyId}, which is not a trusted key (${signer.keyId})`);
    // both keys trusted (a key used before a rotation): mallory's own checkpoint holds, the relabelled one still does not
    expect(anchorsOf(rows, [signer, mallory]).problems.map((p) => p.code)).toEqual(['bad-signature']);
  });

  it('fail when a signed field is edited, or the checkpoint is not one', () => {
    const rows = chainOf(5);
    const good = signer.checkpoint(rows.at(-1)!, new Date('2024-05-01T11:00:00Z'));
    const entries: CheckpointEntry[] = [
      { where: 'a', text: JSON.stringify({ ...good, time: '2024-05-02T11:00:00.000Z' }) },
      { where: 'b', text: JSON.stringify({ ...good, row: 4, hash: rows[3]!.hash }) },
      { where: 'c', text: '{"checkpoint":1' },
      { where: 'd', text: JSON.stringify({ ...good, checkpoint: 2 }) },
      { where: 'e', logRow: 5, text: JSON.stringify(good) }, // a row cannot sign itself or a later one
      { where: 'f', text: JSON.stringify(good) },
    ];
    const report = anchorsOf(rows, [signer], entries);
    expect(report.problems.map((p) => [p.where, p.code])).toEqual([
      ['a', 'bad-signature'],
      ['b', 'bad-signature'],
      ['c', 'malformed'],
      ['d', 'malformed'],
      ['e', 'malformed'],
    ]);
    expect(report).toMatchObject({ checked: 6, valid: 1, last: { row: 5, where: 'f' } });
  });

  it('fail when they sign a row the log no longer has (its end cut off)', () => {
    const rows = chainOf(10);
    const signed = signer.checkpoint(rows[9]!, new Date('2024-05-01T11:00:00Z'));
    const cut = rows.slice(0, 6);
    const report = anchorsOf(cut, [signer], [{ where: 'anchor file line 1', line: 1, text: JSON.stringify(signed) }]);
    expect(report.problems).toEqual([
      expect.objectContaining({ code: 'beyond-chain', row: 10, message: expect.stringContaining('the log ends at row 6: rows were removed from its end') }),
    ]);
  });

  it('never carry the private key: a checkpoint holds the public key, and a signer prints as its key id', () => {
    const { privateKey } = generateKeyPairSync('ed25519');
    const s = new AuditSigner(privateKey);
    const secret = privateKey.export({ type: 'pkcs8', format: 'der' }).subarray(-32).toString('base64');
    const c = s.checkpoint({ id: 1, hash: 'a'.repeat(64) }, new Date());
    expect(JSON.stringify(c)).not.toContain(secret);
    expect(JSON.stringify(s)).toBe(JSON.stringify({ keyId: s.keyId }));
    expect(parseCheckpoint(JSON.stringify(c))).toEqual(c);
    expect(c.keyId).toBe(keyIdOf(s.publicKey));
    expect(c.keyId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('show in `berth audit` as the row they signed and the key', () => {
    const rows = chainOf(2);
    const cp = pushCheckpoint(rows, signer);
    expect(formatAuditTable([cp])).toContain(`audit.checkpoint  -              -     -       berth  info     signed row 2 (key ${signer.keyId})`);
  });
});

describe('verifyBundle (plain data)', () => {
  const signer = newSigner();
  function bundleOf(rows: AuditRow[], key: AuditSigner | null = signer, anchorFile: object[] = []): AuditBundle {
    return {
      format: 'berth-audit-bundle',
      version: 1,
      exportedAt: '2024-05-02T00:00:00.000Z',
      publicKey: key?.publicPem() ?? null,
      keyId: key?.keyId ?? null,
      rows,
      checkpoints: [
        ...rows.filter((r) => r.kind === 'audit.checkpoint').map((r) => ({ source: 'log' as const, logRow: r.id, ...parseCheckpoint(r.message)! })),
        ...anchorFile.map((c, i) => ({ source: 'anchor-file' as const, line: i + 1, ...c })),
      ],
    };
  }
  const rows = chainOf(8);
  pushCheckpoint(rows, signer);
  chainOf(2, rows);

  it("checks the rows and checkpoints against the bundle's own key, or a pinned one", () => {
    const own = verifyBundle(bundleOf(rows));
    expect(own).toMatchObject({ ok: true, keySource: 'bundle', keyIds: [signer.keyId], chain: { ok: true, rows: 11 } });
    expect(own.ok && own.anchors).toMatchObject({ valid: 1, problems: [], last: { row: 8 }, unanchored: { from: 9, to: 11 } });
    const pinned = verifyBundle(bundleOf(rows), [signer.trusted]);
    expect(pinned).toMatchObject({ ok: true, keySource: 'pinned', anchors: { valid: 1, problems: [] } });
    const other = verifyBundle(bundleOf(rows), [newSigner().trusted]);
    expect(other.ok && other.anchors?.problems.map((p) => p.code)).toEqual(['unknown-key']);
    expect(verifyBundle(bundleOf(rows, null))).toMatchObject({ ok: true, keySource: 'none', anchors: { unchecked: 1, problems: [] } });
  });

  it('fails a bundle rewritten with consistent hashes; one re-signed with another key holds only against that key', () => {
    const forged = rewrite(rows, 3, { actor: 'nobody' });
    const f = verifyBundle(bundleOf(forged));
    expect(f.ok && f.anchors?.problems.map((p) => [p.code, p.where])).toEqual([['hash-mismatch', 'row 9']]);
    // whoever rewrites the bundle can sign it again with a key of their own and put that key in it:
    const mallory = newSigner();
    const resigned = forged.slice(0, 8);
    pushCheckpoint(resigned, mallory);
    chainOf(2, resigned);
    expect(verifyBundle(bundleOf(resigned, mallory))).toMatchObject({ ok: true, anchors: { valid: 1, problems: [] } }); // consistent...
    const pinned = verifyBundle(bundleOf(resigned, mallory), [signer.trusted]);
    expect(pinned.ok && pinned.anchors?.problems.map((p) => p.code)).toEqual(['unknown-key']); // ...but not signed by the key you expect
  });

  it('checks the anchor-file checkpoints it lists, and that those given as a row are that row', () => {
    const later = signer.checkpoint(rows[10]!, new Date('2024-05-01T12:00:00Z'));
    const withFile = verifyBundle(bundleOf(rows, signer, [later]));
    expect(withFile.ok && withFile.anchors).toMatchObject({ checked: 2, valid: 2, last: { row: 11, where: 'anchor file line 1' } });
    expect(withFile.ok && withFile.anchors?.unanchored).toBeUndefined();
    const wrongRow = bundleOf(rows);
    (wrongRow.checkpoints[0] as { logRow: number }).logRow = 3;
    const w = verifyBundle(wrongRow);
    expect(w.ok && w.anchors?.problems.map((p) => [p.code, p.where])).toEqual([['malformed', "the bundle's checkpoints[0]"]]);
  });

  it.each([
    ['not an object', 'rows'],
    ['another format', { ...bundleOf(rows), format: 'other' }],
    ['another version', { ...bundleOf(rows), version: 2 }],
    ['rows not a list', { ...bundleOf(rows), rows: {} }],
    ['a public key that is not one', { ...bundleOf(rows), publicKey: 'nope' }],
  ])('refuses %s', (_, value) => {
    expect(verifyBundle(value)).toMatchObject({ ok: false, code: 'not-a-bundle' });
  });
});

// ---- a real database ----

describe('Checkpointer', () => {
  let dir: string;
  let db: SqliteDb;
  let log: AuditLog;
  let now: number;
  const signer = newSigner();
  const anchorLines = () => readFileSync(join(dir, 'anchors.jsonl'), 'utf8').trim().split('\n').filter(Boolean);
  const make = (rule = { everyRows: 5, everyMs: 60_000 }) =>
    new Checkpointer(log, signer, { log: testLog(), rule, now: () => new Date(now), anchorFile: join(dir, 'anchors.jsonl') });
  const append = (n: number) => {
    for (let i = 0; i < n; i++) log.append({ kind: 'container.created', message: `event ${i}` });
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-anchor-'));
    db = openDatabase(join(dir, 'berth.db'));
    log = new AuditLog(db);
    now = Date.parse('2024-05-01T10:00:00Z');
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('signs when rows were added and the last checkpoint (or the start) is everyMs old', () => {
    const cp = make();
    expect(cp.due()).toBeUndefined(); // an empty log
    append(3);
    expect(cp.due()).toBeUndefined();
    now += 60_000;
    const first = cp.due()!;
    expect(first).toMatchObject({ id: 4, kind: 'audit.checkpoint', outcome: 'info', actor: 'berth' });
    expect(parseCheckpoint(first.message)).toMatchObject({ row: 3, time: '2024-05-01T10:01:00.000Z', keyId: signer.keyId });
    now += 10 * 60_000;
    expect(cp.due()).toBeUndefined(); // nothing added since
    append(1);
    expect(cp.due()).toMatchObject({ id: 6 });
    expect(anchorLines()).toEqual([first.message, log.query({ limit: 1 }).rows[0]!.message]);
    expect(verifyLog(log, [signer.trusted]).anchors).toMatchObject({ valid: 2, problems: [], last: { row: 5 } });
  });

  it('signs after every everyRows rows this log appends, once the append is done', async () => {
    const cp = make();
    cp.start();
    try {
      append(4);
      await new Promise((r) => setImmediate(r));
      expect(log.query({ kind: 'audit.checkpoint' }).rows).toEqual([]);
      append(1);
      expect(log.query({ kind: 'audit.checkpoint' }).rows).toEqual([]); // not inside the append
      await new Promise((r) => setImmediate(r));
      const [row] = log.query({ kind: 'audit.checkpoint' }).rows;
      expect(row).toMatchObject({ id: 6 });
      expect(parseCheckpoint(row!.message)?.row).toBe(5);
    } finally {
      cp.stop();
    }
  });

  it('signs the rows left at close, and nothing when the head is a checkpoint already', () => {
    append(2);
    expect(make().close()).toMatchObject({ id: 3 });
    expect(make().close()).toBeUndefined();
    expect(anchorLines()).toHaveLength(1);
  });

  it('signs the row it is chained to, with another writer appending too', () => {
    const otherDb = openDatabase(join(dir, 'berth.db'));
    const other = new AuditLog(otherDb);
    const cp = make({ everyRows: 1, everyMs: 60_000 });
    for (let i = 0; i < 20; i++) {
      other.append({ kind: 'sync.started' });
      append(1);
      cp.due();
    }
    otherDb.close();
    const rows = log.query({ limit: 1000 }).rows;
    const checkpoints = rows.filter((r) => r.kind === 'audit.checkpoint');
    expect(checkpoints).toHaveLength(20);
    for (const c of checkpoints) expect(parseCheckpoint(c.message)!.row).toBe(c.id - 1);
    expect(verifyLog(log, [signer.trusted])).toMatchObject({ chain: { ok: true, rows: 60 }, anchors: { valid: 20, problems: [] } });
  });
});

/** Lifts the append-only triggers and rewrites rows from `id` on with their hashes, as someone holding only the database file could. */
function rewriteFile(file: string, id: number, change: Record<string, string>): void {
  const db = new DatabaseSync(file);
  try {
    db.exec('DROP TRIGGER IF EXISTS audit_no_update; DROP TRIGGER IF EXISTS audit_no_delete;');
    const rows = db.prepare('SELECT * FROM audit ORDER BY id').all() as unknown as AuditRow[];
    let prevHash = rows[id - 2]?.hash ?? GENESIS_HASH;
    for (const r of rows.slice(id - 1)) {
      const clean = Object.fromEntries(Object.entries(r).filter(([, v]) => v !== null)) as unknown as AuditRow;
      const edited = { ...clean, ...(r.id === id ? change : {}), prevHash };
      const hash = rowHash(edited);
      const sets = Object.keys(change);
      db.prepare(`UPDATE audit SET ${[...(r.id === id ? sets : []), 'prevHash', 'hash'].map((c) => `"${c}" = ?`).join(', ')} WHERE id = ?`).run(
        ...(r.id === id ? sets.map((c) => change[c]!) : []),
        prevHash,
        hash,
        r.id,
      );
      prevHash = hash;
    }
  } finally {
    db.close();
  }
}

describe('berth audit verify and export', () => {
  let cfg: ReturnType<typeof writeConfig>;
  let dbFile: string;
  let keyFile: string;
  let anchorFile: string;
  let signer: AuditSigner;
  let tmp: string;

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'berth-anchor-cli-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  /** A config with the key and an anchor file, and a log of 20 rows, a checkpoint (row 21), 10 more rows. */
  beforeEach(() => {
    const key = generateAuditKey();
    cfg = writeConfig([], { auditKeyFile: 'audit.key', auditAnchorFile: 'anchors/anchors.jsonl' });
    keyFile = join(cfg.dir, 'audit.key');
    anchorFile = join(cfg.dir, 'anchors', 'anchors.jsonl');
    mkdirSync(join(cfg.dir, 'anchors'));
    writeFileSync(keyFile, key.privatePem, { mode: 0o600 });
    writeFileSync(`${keyFile}.pub`, key.publicPem);
    signer = loadAuditSigner(keyFile);
    dbFile = join(cfg.dataDir, 'berth.db');
    const db = openDatabase(dbFile);
    const log = new AuditLog(db);
    const cp = new Checkpointer(log, signer, { log: testLog(), anchorFile });
    for (let i = 1; i <= 20; i++) log.append({ kind: 'container.created', stack: 'shop', message: `event ${i}` });
    cp.checkpoint();
    for (let i = 21; i <= 30; i++) log.append({ kind: 'container.created', stack: 'shop', message: `event ${i}` });
    db.close();
  });
  afterEach(() => cfg.cleanup());

  const verify = (...args: string[]) => runCli(['--config', cfg.file, 'audit', 'verify', ...args]);

  it('reports the last anchored row and the rows not yet anchored', async () => {
    const r = await verify();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const time = parseCheckpoint(readFileSync(anchorFile, 'utf8').trim())!.time;
    expect(r.stdout.split('\n')).toEqual([
      `ok: 31 row(s), chain intact; last anchored row 20 at ${time} (key ${signer.keyId})`,
      '2 checkpoint(s) checked against auditKeyFile, all hold (1 of them lines of the anchor file)',
      'not yet anchored: rows 21-31; the engine signs a checkpoint every 100 rows, every 10 minutes when rows were added, and when it stops',
      '',
    ]);
    const pinned = await verify('--public-key', `${keyFile}.pub`);
    expect(pinned.code, pinned.stderr).toBe(0);
    expect(pinned.stdout).toContain('checked against the --public-key, all hold');
  });

  it('fails a chain rewritten with consistent hashes: the checkpoints no longer match', async () => {
    rewriteFile(dbFile, 7, { message: 'nothing to see' });
    const db = openDatabase(dbFile);
    expect(new AuditLog(db).verify()).toEqual({ ok: true, rows: 31 }); // the chain alone is fooled
    db.close();
    const r = await verify();
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('audit log not as anchored: the chain of 31 row(s) is intact, but 2 of 2 checkpoint(s) do not hold');
    expect(r.stderr).toContain('row 21: row 20 no longer has the hash the checkpoint signed');
    expect(r.stderr).toContain('anchor file line 1: row 20 no longer has the hash');
    noStackTrace(r.stderr);
  });

  it('fails a forged checkpoint: its signature does not hold for the key', async () => {
    const db = openDatabase(dbFile);
    const log = new AuditLog(db);
    const mallory = newSigner();
    // mallory's checkpoint, relabelled with the trusted key's id
    log.appendAfter((head) => ({ kind: 'audit.checkpoint', message: JSON.stringify({ ...mallory.checkpoint(head!, new Date()), keyId: signer.keyId }) }));
    db.close();
    const r = await verify();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`row 32: the signature of the checkpoint of row 31 does not hold for key ${signer.keyId}: it was forged`);
  });

  it('fails checkpoints of another key, unless that key is given too', async () => {
    const db = openDatabase(dbFile);
    const mallory = newSigner();
    new Checkpointer(new AuditLog(db), mallory, { log: testLog() }).checkpoint();
    db.close();
    const r = await verify();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`row 32: signed by key ${mallory.keyId}, which is not a trusted key (${signer.keyId})`);
    const otherPub = join(tmp, 'mallory.pub');
    writeFileSync(otherPub, mallory.publicPem());
    const both = await verify('--public-key', `${keyFile}.pub`, '--public-key', otherPub);
    expect(both.code, both.stderr).toBe(0);
    expect(both.stdout).toMatch(new RegExp(`^ok: 32 row\\(s\\), chain intact; last anchored row 31 at .* \\(key ${mallory.keyId}\\)\n`));
  });

  it('fails a log cut short before an anchored row, through the anchor file', async () => {
    const db = new DatabaseSync(dbFile);
    db.exec('DROP TRIGGER audit_no_delete; DELETE FROM audit WHERE id >= 15');
    db.close();
    const r = await verify();
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('anchor file line 1: the checkpoint signed row 20 at');
    expect(r.stderr).toContain('but the log ends at row 14: rows were removed from its end');
  });

  it('says the log is not anchored without a key, and names a public key file it cannot read', async () => {
    writeFileSync(cfg.file, readFileSync(cfg.file, 'utf8').replace(/^audit(Key|Anchor)File: .*\n/gm, ''));
    const r = await verify();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^ok: 31 row\(s\), chain intact; not anchored \(1 checkpoint\(s\) not checked\): no auditKeyFile in the config and no --public-key/,
    );
    const missing = await verify('--public-key', join(tmp, 'nope.pub'));
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`cannot read a public key from ${join(tmp, 'nope.pub')}: ENOENT`);
  });

  it('exports a bundle that verifies elsewhere without the database or the config', async () => {
    const out = join(tmp, 'audit.bundle.json');
    const exported = await runCli(['--config', cfg.file, 'audit', 'export', '--out', out]);
    expect(exported.code, exported.stderr).toBe(0);
    expect(exported.stdout).toBe(`wrote ${out}: 31 row(s), 2 checkpoint(s) (1 from the anchor file), public key ${signer.keyId}\n`);
    const bundle = JSON.parse(readFileSync(out, 'utf8')) as AuditBundle;
    expect(bundle).toMatchObject({ format: 'berth-audit-bundle', version: 1, keyId: signer.keyId, publicKey: signer.publicPem() });
    expect(bundle.rows.map((r) => r.id)).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
    expect(bundle.checkpoints.map((c) => c.source)).toEqual(['log', 'anchor-file']);
    expect(readFileSync(out, 'utf8')).not.toContain(readFileSync(keyFile, 'utf8').split('\n')[1]!);
    const nowhere = await runCli(['--config', cfg.file, 'audit', 'export', '--out', join(tmp, 'no-such-folder', 'b.json')]);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toBe(`cannot write the bundle ${join(tmp, 'no-such-folder', 'b.json')}: ENOENT\n`);

    // another machine: a fresh folder with the bundle (and the public key), nothing else
    const elsewhere = mkdtempSync(join(tmpdir(), 'berth-elsewhere-'));
    try {
      copyFileSync(out, join(elsewhere, 'bundle.json'));
      copyFileSync(`${keyFile}.pub`, join(elsewhere, 'expected.pub'));
      const env = { BERTH_CONFIG: '' };
      const own = await runCli(['audit', 'verify', '--bundle', 'bundle.json'], { cwd: elsewhere, env });
      expect(own.code, own.stderr).toBe(0);
      expect(own.stdout).toContain(`ok: 31 row(s), chain intact; last anchored row 20 at`);
      expect(own.stdout).toContain(`checked against the bundle's own public key (${signer.keyId}): this proves the bundle is consistent, not who made it`);
      const pinned = await runCli(['audit', 'verify', '--bundle', 'bundle.json', '--public-key', 'expected.pub'], { cwd: elsewhere, env });
      expect(pinned.code, pinned.stderr).toBe(0);
      expect(pinned.stdout).toContain('2 checkpoint(s) checked against the --public-key, all hold');
      expect(readdirSync(elsewhere).sort()).toEqual(['bundle.json', 'expected.pub']); // no config, no data folder made

      // the bundle rewritten with consistent hashes
      writeFileSync(join(elsewhere, 'forged.json'), JSON.stringify({ ...bundle, rows: rewrite(bundle.rows, 4, { message: 'forged' }) }));
      const forged = await runCli(['audit', 'verify', '--bundle', 'forged.json'], { cwd: elsewhere, env });
      expect(forged.code).toBe(1);
      expect(forged.stderr).toContain('row 21: row 20 no longer has the hash the checkpoint signed');
      // pinned to another key
      writeFileSync(join(elsewhere, 'other.pub'), newSigner().publicPem());
      const other = await runCli(['audit', 'verify', '--bundle', 'bundle.json', '--public-key', 'other.pub'], { cwd: elsewhere, env });
      expect(other.code).toBe(1);
      expect(other.stderr).toContain(`signed by key ${signer.keyId}, which is not a trusted key`);
      // not a bundle
      writeFileSync(join(elsewhere, 'junk.json'), '{"rows": []}');
      const junk = await runCli(['audit', 'verify', '--bundle', 'junk.json'], { cwd: elsewhere, env });
      expect(junk.code).toBe(2);
      expect(junk.stderr).toContain('junk.json: not an audit bundle of this berth');
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});

describe('the engine and its audit key', () => {
  it('signs the rows it appended when it closes, into the log and the anchor file, and never logs the key', () => {
    const key = generateAuditKey();
    const cfg = writeConfig([], { auditKeyFile: 'audit.key', auditAnchorFile: 'anchors.jsonl' });
    try {
      writeFileSync(join(cfg.dir, 'audit.key'), key.privatePem, { mode: 0o600 });
      const captured = capturedLogger();
      const engine = new Engine(loadConfig(cfg.file), captured.log);
      for (let i = 0; i < 3; i++) engine.audit.append({ kind: 'stack.paused', stack: 'shop', actor: 'ci' });
      engine.close();
      engine.close(); // a second close does nothing
      const db = openDatabase(join(cfg.dataDir, 'berth.db'));
      const log = new AuditLog(db);
      const rows = log.query().rows;
      expect(rows.map((r) => r.kind)).toEqual(['audit.checkpoint', 'stack.paused', 'stack.paused', 'stack.paused']);
      expect(parseCheckpoint(rows[0]!.message)).toMatchObject({ row: 3, keyId: key.keyId });
      expect(readFileSync(join(cfg.dir, 'anchors.jsonl'), 'utf8')).toBe(`${rows[0]!.message}\n`);
      const secret = key.privatePem.split('\n')[1]!;
      expect(JSON.stringify(rows)).not.toContain(secret);
      expect(captured.text()).toContain('audit log checkpoint signed');
      expect(captured.text()).not.toContain(secret);
      db.close();
    } finally {
      cfg.cleanup();
    }
  });

  it('without a key, writes no checkpoint', () => {
    const cfg = writeConfig([]);
    try {
      const engine = new Engine(loadConfig(cfg.file), testLog());
      engine.audit.append({ kind: 'stack.paused', stack: 'shop' });
      engine.close();
      const db = openDatabase(join(cfg.dataDir, 'berth.db'));
      expect(new AuditLog(db).query().rows.map((r) => r.kind)).toEqual(['stack.paused']);
      db.close();
    } finally {
      cfg.cleanup();
    }
  });

  const SECRET = 'THIS-IS-WHAT-THE-FILE-HOLDS';
  it.each([
    ['missing', null, /cannot read the audit key from (\S+): ENOENT/],
    ['not a key', `${SECRET}\n`, /the audit key (\S+) is not a PEM private key \(berth init makes one\)/],
    ['an RSA key', 'rsa', /the audit key (\S+) is an rsa key, not Ed25519/],
    ['a public key', 'public', /the audit key (\S+) is not a PEM private key/],
  ])('serve stops when the key file is %s, naming the file and never its content', async (_, content, message) => {
    const cfg = writeConfig([], { auditKeyFile: 'audit.key' });
    const file = join(cfg.dir, 'audit.key');
    let secret = SECRET;
    if (content === 'rsa') {
      const pem = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
      writeFileSync(file, pem);
      secret = pem.split('\n')[1]!;
    } else if (content === 'public') {
      const pem = generateAuditKey().publicPem;
      writeFileSync(file, pem);
      secret = pem.split('\n')[1]!;
    } else if (content !== null) writeFileSync(file, content);
    try {
      const r = await runCli(['--config', cfg.file, 'serve']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(message.exec(r.stderr)![1]).toBe(file);
      expect(r.stderr).not.toContain(secret);
      noStackTrace(r.stderr);
      expect(existsSync(join(cfg.dataDir, 'berth.db'))).toBe(false); // stopped before opening anything
    } finally {
      cfg.cleanup();
    }
  });

  it('serve stops when the anchor file cannot be written; an anchor file without a key is refused', async () => {
    const cfg = writeConfig([], { auditKeyFile: 'audit.key', auditAnchorFile: 'no-such-folder/anchors.jsonl' });
    try {
      writeFileSync(join(cfg.dir, 'audit.key'), generateAuditKey().privatePem);
      const r = await runCli(['--config', cfg.file, 'serve']);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`cannot write the audit anchor file ${join(cfg.dir, 'no-such-folder/anchors.jsonl')}: ENOENT`);
      writeFileSync(cfg.file, readFileSync(cfg.file, 'utf8').replace(/^auditKeyFile: .*\n/m, ''));
      const noKey = await runCli(['--config', cfg.file, 'audit', 'verify']);
      expect(noKey.code).toBe(2);
      expect(noKey.stderr).toContain('auditAnchorFile holds signed checkpoints: give auditKeyFile too');
    } finally {
      cfg.cleanup();
    }
  });

  it('serve signs a last checkpoint when it stops cleanly', async () => {
    const port = await freePort();
    const cfg = writeConfig([], { auditKeyFile: 'audit.key', auditAnchorFile: 'anchors.jsonl', listen: `127.0.0.1:${port}` });
    writeFileSync(join(cfg.dir, 'audit.key'), generateAuditKey().privatePem, { mode: 0o600 });
    const serve = runCli(['--config', cfg.file, 'serve']);
    try {
      await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status === 200, {
        what: 'berth to be ready',
        timeoutMs: 60_000,
      });
      // a row another process (a CLI pause) appends while serve runs
      const db = openDatabase(join(cfg.dataDir, 'berth.db'));
      const mine = new AuditLog(db).append({ kind: 'stack.paused', stack: 'shop', actor: 'cli:test' });
      db.close();
      serve.child.kill('SIGTERM');
      const ended = await serve;
      expect(ended.code, ended.stderr).toBe(0);
      const after = openDatabase(join(cfg.dataDir, 'berth.db'));
      const [last] = new AuditLog(after).query({ limit: 1 }).rows;
      after.close();
      expect(last!.kind).toBe('audit.checkpoint');
      expect(parseCheckpoint(last!.message)!.row).toBeGreaterThanOrEqual(mine.id);
      const r = await runCli(['--config', cfg.file, 'audit', 'verify']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(`, that checkpoint's own, is covered by the next one`);
    } finally {
      serve.child.kill('SIGKILL');
      cfg.cleanup();
    }
  });
});

describe('berth init', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-init-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const init = (args: string[] = []) => runCli([...args, 'init'], { cwd: dir, env: { BERTH_CONFIG: '' } });

  it('makes the key (0600) and a starter config that loads, then refuses to replace the key', async () => {
    const r = await init();
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const signer = loadAuditSigner(join(dir, 'audit.key'));
    expect(r.stdout.split('\n')).toEqual([
      `created audit.key: the Ed25519 key that signs the audit log's checkpoints (key ${signer.keyId}, mode 0600)`,
      'created audit.key.pub: its public key, for `berth audit verify --public-key` elsewhere',
      'created berth.config.yaml: the local Docker socket as the host, no repos yet: add yours, the API on 127.0.0.1:8080 (no tokens: loopback only), dataDir ./data, auditKeyFile audit.key',
      '',
    ]);
    expect(statSync(join(dir, 'audit.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'audit.key.pub'), 'utf8')).toBe(signer.publicPem());
    const config = loadConfig(join(dir, 'berth.config.yaml'));
    expect(config).toMatchObject({
      dataDir: join(dir, 'data'),
      auditKeyFile: join(dir, 'audit.key'),
      hosts: [{ name: 'local', endpoint: 'unix:///var/run/docker.sock' }],
      repos: [],
    });
    expect(config.auditAnchorFile).toBeUndefined();

    const key = readFileSync(join(dir, 'audit.key'), 'utf8');
    const again = await init();
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('audit.key exists: berth init never replaces a key');
    expect(readFileSync(join(dir, 'audit.key'), 'utf8')).toBe(key);
  });

  it("makes the key where an existing config's auditKeyFile says, and leaves the config alone", async () => {
    mkdirSync(join(dir, 'etc'));
    const text = 'dataDir: /var/lib/berth\nauditKeyFile: keys/berth-audit.key\n';
    writeFileSync(join(dir, 'etc', 'berth.yaml'), text);
    const r = await init(['--config', 'etc/berth.yaml']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('created etc/keys/berth-audit.key: ');
    expect(r.stdout).not.toContain('berth.yaml');
    expect(loadAuditSigner(join(dir, 'etc', 'keys', 'berth-audit.key')).keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(readFileSync(join(dir, 'etc', 'berth.yaml'), 'utf8')).toBe(text);
  });

  it('puts the key beside a config that names none, and says what to add', async () => {
    writeFileSync(join(dir, 'berth.config.yaml'), 'dataDir: ./state\n');
    const r = await init();
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('created audit.key: ');
    expect(r.stdout).toContain('add to berth.config.yaml, for the engine to sign with it: auditKeyFile: audit.key');
    expect(readFileSync(join(dir, 'berth.config.yaml'), 'utf8')).toBe('dataDir: ./state\n');
  });
});
