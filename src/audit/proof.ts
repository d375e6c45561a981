/**
 * What `berth audit verify` and `berth audit export` prove (docs/how-it-works.md, "The audit
 * log"): the chain intact, and every checkpoint (in the log, in the anchor file, in a bundle)
 * signed by a trusted key and matching the chain. A bundle is the whole log as JSON with its
 * checkpoints and its public key, checked on another machine without the database or the config.
 */
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { ConfigError } from '../config.ts';
import {
  checkAnchors,
  namedRows,
  parseCheckpoint,
  publicKeyFromPem,
  type AnchorProblem,
  type AnchorReport,
  type CheckpointEntry,
  type TrustedKey,
} from './anchor.ts';
import { verifyChain, type AuditLog, type AuditRow, type VerifyResult } from './log.ts';

/** What a verification found: the chain, then (when the chain is intact) the checkpoints. */
export interface Verification {
  chain: VerifyResult;
  anchors?: AnchorReport;
}

/** The checkpoints in the lines of an anchor file (auditAnchorFile); none when it does not exist yet. */
export function readAnchorFile(file: string): CheckpointEntry[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    throw new ConfigError(`cannot read the audit anchor file ${file}: ${code ?? 'error'}`);
  }
  return text.split('\n').flatMap((l, i) => (l.trim() ? [{ where: `anchor file line ${i + 1}`, line: i + 1, text: l }] : []));
}

/** The checkpoint rows of the log, oldest first. */
export function logCheckpoints(audit: AuditLog): CheckpointEntry[] {
  const found: CheckpointEntry[] = [];
  let cursor: number | undefined;
  do {
    const page = audit.query({ kind: 'audit.checkpoint', limit: 1000, cursor });
    found.push(...page.rows.map(checkpointEntryOf));
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return found.reverse();
}

const checkpointEntryOf = (row: AuditRow): CheckpointEntry => ({ where: `row ${row.id}`, logRow: row.id, text: row.message ?? '' });

/**
 * Verifies the log in the database: the chain, then the checkpoints of the log and `more` (the
 * anchor file's, read before this is called so that each names a row already written) against
 * the trusted keys.
 */
export function verifyLog(audit: AuditLog, trusted: readonly TrustedKey[], more: readonly CheckpointEntry[] = []): Verification {
  const checkpoints = [...logCheckpoints(audit), ...more];
  const named = namedRows(checkpoints);
  const hashes = new Map<number, string>();
  const chain = audit.verify((row) => {
    if (named.has(row.id)) hashes.set(row.id, row.hash);
  });
  if (!chain.ok) return { chain };
  return { chain, anchors: checkAnchors({ end: chain.rows, hashes, checkpoints, trusted }) };
}

/** The format of a bundle (its `format` and `version`). */
export const BUNDLE_FORMAT = 'berth-audit-bundle';
export const BUNDLE_VERSION = 1;

/**
 * A checkpoint listed in a bundle: one of the log (also in its rows, as the `message` of row
 * `logRow`) or a line of the anchor file; `unreadable` holds a line that is not a checkpoint.
 */
export type BundleCheckpoint =
  | ({ source: 'log'; logRow: number } & Record<string, unknown>)
  | ({ source: 'anchor-file'; line: number } & Record<string, unknown>)
  | { source: 'anchor-file'; line: number; unreadable: string };

/** `berth audit export`: the whole log, its checkpoints and the public key that checks them. */
export interface AuditBundle {
  format: typeof BUNDLE_FORMAT;
  version: typeof BUNDLE_VERSION;
  exportedAt: string;
  /** the public key of auditKeyFile (PEM, SPKI), null when the config names none */
  publicKey: string | null;
  keyId: string | null;
  /** every row, oldest first */
  rows: AuditRow[];
  checkpoints: BundleCheckpoint[];
}

/**
 * Writes the log as a bundle to `file` (through a file beside it, renamed once complete), one row
 * at a time so that a large log is never held in memory. Returns what it wrote.
 */
export function writeBundle(
  audit: AuditLog,
  file: string,
  opts: { key?: { publicPem: string; keyId: string }; anchorFile?: readonly CheckpointEntry[]; now?: Date },
): { rows: number; checkpoints: number; fromAnchorFile: number } {
  const tmp = `${file}.${process.pid}.tmp`;
  const fd = openSync(tmp, 'w', 0o644);
  let rows = 0;
  const fromLog: BundleCheckpoint[] = [];
  try {
    const head = {
      format: BUNDLE_FORMAT,
      version: BUNDLE_VERSION,
      exportedAt: (opts.now ?? new Date()).toISOString(),
      publicKey: opts.key?.publicPem ?? null,
      keyId: opts.key?.keyId ?? null,
    };
    writeSync(fd, `${JSON.stringify(head, null, 2).slice(0, -2)},\n  "rows": [`);
    for (const row of audit.rows()) {
      writeSync(fd, `${rows ? ',' : ''}\n    ${JSON.stringify(row)}`);
      rows++;
      if (row.kind === 'audit.checkpoint') {
        const c = parseCheckpoint(row.message);
        if (c) fromLog.push({ source: 'log', logRow: row.id, ...c });
      }
    }
    const fromFile: BundleCheckpoint[] = (opts.anchorFile ?? []).map((e, i) => {
      const line = e.line ?? i + 1;
      const c = parseCheckpoint(e.text);
      return c ? { source: 'anchor-file', line, ...c } : { source: 'anchor-file', line, unreadable: e.text };
    });
    const list = [...fromLog, ...fromFile];
    writeSync(fd, `${rows ? '\n  ' : ''}],\n  "checkpoints": [${list.map((c) => `\n    ${JSON.stringify(c)}`).join(',')}${list.length ? '\n  ' : ''}]\n}\n`);
    closeSync(fd);
    renameSync(tmp, file);
    return { rows, checkpoints: list.length, fromAnchorFile: fromFile.length };
  } catch (err) {
    try {
      closeSync(fd);
    } catch {
      // closed already
    }
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** How a bundle was checked: against pinned keys (--public-key), the bundle's own key, or none. */
export type BundleKeySource = 'pinned' | 'bundle' | 'none';

export type BundleVerification =
  | (Verification & { ok: true; keySource: BundleKeySource; keyIds: string[] })
  /** not a bundle this berth reads (or its public key is not one): nothing was checked */
  | { ok: false; code: 'not-a-bundle'; message: string };

/**
 * Checks a bundle (parsed JSON) as `verifyLog` checks the database: its rows' chain, then every
 * checkpoint in its rows and its list against `pinned` when given, else against the bundle's own
 * public key (which proves only that the bundle is consistent, not who made it). A checkpoint the
 * list gives as a row's must be that row's.
 */
export function verifyBundle(bundle: unknown, pinned: readonly TrustedKey[] = []): BundleVerification {
  const notBundle = (why: string): BundleVerification => ({ ok: false, code: 'not-a-bundle', message: `not an audit bundle of this berth: ${why}` });
  if (typeof bundle !== 'object' || bundle === null) return notBundle('not a JSON object');
  const b = bundle as Partial<Record<keyof AuditBundle, unknown>>;
  if (b.format !== BUNDLE_FORMAT) return notBundle(`its format is not "${BUNDLE_FORMAT}"`);
  if (b.version !== BUNDLE_VERSION) return notBundle(`version ${String(b.version)}, this berth reads version ${BUNDLE_VERSION}`);
  if (!Array.isArray(b.rows) || !b.rows.every((r) => typeof r === 'object' && r !== null)) return notBundle('"rows" is not a list of rows');
  if (!Array.isArray(b.checkpoints) || !b.checkpoints.every((c) => typeof c === 'object' && c !== null)) return notBundle('"checkpoints" is not a list');
  let trusted: TrustedKey[] = [...pinned];
  let keySource: BundleKeySource = 'pinned';
  if (!pinned.length) {
    if (typeof b.publicKey === 'string') {
      try {
        trusted = [publicKeyFromPem(b.publicKey, "the bundle's public key")];
      } catch (err) {
        return notBundle((err as Error).message);
      }
      keySource = 'bundle';
    } else keySource = 'none';
  }
  const rows = b.rows as AuditRow[];
  const list = b.checkpoints as Array<Record<string, unknown>>;
  const checkpoints: CheckpointEntry[] = rows.filter((r) => r.kind === 'audit.checkpoint').map(checkpointEntryOf);
  const listed: AnchorProblem[] = [];
  for (const [i, entry] of list.entries()) {
    const { source, logRow, line, unreadable, ...rest } = entry;
    const where = source === 'anchor-file' ? `anchor file line ${String(line)}` : `the bundle's checkpoints[${i}]`;
    if (source === 'log') {
      // the row's own checkpoint is checked from the row: the list must say the same
      const row = Number.isSafeInteger(logRow) ? rows[(logRow as number) - 1] : undefined;
      if (row?.id !== logRow || row?.kind !== 'audit.checkpoint' || row.message !== JSON.stringify(parseCheckpoint(JSON.stringify(rest)))) {
        listed.push({ code: 'malformed', where, message: `${where}: given as the checkpoint of row ${String(logRow)}, which holds another (or none)` });
      }
    } else checkpoints.push({ where, text: typeof unreadable === 'string' ? unreadable : JSON.stringify(rest) });
  }
  const named = namedRows(checkpoints);
  const hashes = new Map<number, string>();
  const chain = verifyChain(rows, (row) => {
    if (named.has(row.id)) hashes.set(row.id, row.hash);
  });
  const keyIds = trusted.map((k) => k.keyId);
  if (!chain.ok) return { ok: true, chain, keySource, keyIds };
  const anchors = checkAnchors({ end: chain.rows, hashes, checkpoints, trusted });
  anchors.problems.push(...listed);
  return { ok: true, chain, anchors, keySource, keyIds };
}
