/**
 * Anchoring the audit log (docs/how-it-works.md, "The audit log"): the hash chain alone shows a
 * naive edit, but whoever can write the database can rewrite rows and compute every hash again.
 * A checkpoint is the chain's head (a row id and its hash) signed with the engine's Ed25519 key,
 * which does not live with the database: a rewritten chain no longer matches the hashes the
 * checkpoints signed, and a checkpoint cannot be made without the key.
 *
 * Here: the key (load, make), a checkpoint (make, parse) and the pure checks of checkpoints
 * against a chain. The private key stays inside AuditSigner: it never reaches a row, a log line,
 * an answer or an error (errors name the file, never its content).
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../config.ts';

/** The version of a checkpoint's JSON (its `checkpoint` field). */
export const CHECKPOINT_VERSION = 1;

/**
 * A signed checkpoint, as stored in the `message` of an `audit.checkpoint` row and as a line of the
 * anchor file: rows 1 to `row` are as they were when it was signed, `hash` being row `row`'s hash.
 */
export interface Checkpoint {
  checkpoint: typeof CHECKPOINT_VERSION;
  /** the id of the row signed (the chain's head when it was signed) */
  row: number;
  /** that row's hash */
  hash: string;
  /** when it was signed (ISO 8601, UTC) */
  time: string;
  /** keyIdOf() the public key that checks it */
  keyId: string;
  /** that public key (SPKI, DER, base64): what it claims, never trusted by itself */
  publicKey: string;
  /** Ed25519 signature (base64) of signedBytes() */
  signature: string;
}

/** Why a key cannot be used; the message names the file, never what it holds. */
export type AuditKeyErrorCode = 'key-unreadable' | 'not-a-private-key' | 'not-a-public-key' | 'not-ed25519';

/** A key file berth cannot use. A ConfigError: berth cannot do its job (exit 2). */
export class AuditKeyError extends ConfigError {
  override name = 'AuditKeyError';
  readonly code: AuditKeyErrorCode;
  constructor(message: string, code: AuditKeyErrorCode) {
    super(message);
    this.code = code;
  }
}

/** A public key checkpoints are checked against, with its id. */
export interface TrustedKey {
  keyId: string;
  key: KeyObject;
}

/** A short fingerprint of a public key: the first 16 hex digits of the sha256 of its SPKI DER. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(spki(publicKey)).digest('hex').slice(0, 16);
}

const spki = (publicKey: KeyObject): Buffer => publicKey.export({ type: 'spki', format: 'der' });
const pem = (key: KeyObject, type: 'spki' | 'pkcs8'): string => key.export({ type, format: 'pem' }) as string;

/** The bytes a checkpoint's signature covers: its version, row, hash, time and key id, domain-separated. */
export function signedBytes(c: Pick<Checkpoint, 'row' | 'hash' | 'time' | 'keyId'>): Buffer {
  return Buffer.from(JSON.stringify(['berth audit checkpoint', CHECKPOINT_VERSION, c.row, c.hash, c.time, c.keyId]));
}

/** Holds the engine's private key and signs checkpoints with it; nothing else can read the key. */
export class AuditSigner {
  readonly #privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly keyId: string;

  constructor(privateKey: KeyObject) {
    if (privateKey.type !== 'private' || privateKey.asymmetricKeyType !== 'ed25519') throw new TypeError('an AuditSigner needs an Ed25519 private key');
    this.#privateKey = privateKey;
    this.publicKey = createPublicKey(privateKey);
    this.keyId = keyIdOf(this.publicKey);
  }

  /** The public key, to check this signer's checkpoints with. */
  get trusted(): TrustedKey {
    return { keyId: this.keyId, key: this.publicKey };
  }

  /** The public key as PEM (SPKI). */
  publicPem(): string {
    return pem(this.publicKey, 'spki');
  }

  /** A checkpoint of `head`, signed at `time`. */
  checkpoint(head: { id: number; hash: string }, time: Date): Checkpoint {
    const body = { row: head.id, hash: head.hash, time: time.toISOString(), keyId: this.keyId };
    return {
      checkpoint: CHECKPOINT_VERSION,
      ...body,
      publicKey: spki(this.publicKey).toString('base64'),
      signature: sign(null, signedBytes(body), this.#privateKey).toString('base64'),
    };
  }

  /** Never the key: what a log line or JSON.stringify() of a signer shows. */
  toJSON(): { keyId: string } {
    return { keyId: this.keyId };
  }
}

function readKeyFile(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new AuditKeyError(`cannot read ${what} from ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, 'key-unreadable');
  }
}

/** The engine's signing key from `file` (auditKeyFile): an Ed25519 private key, PEM (PKCS#8). */
export function loadAuditSigner(file: string): AuditSigner {
  const text = readKeyFile(file, 'the audit key');
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: text, format: 'pem' });
  } catch {
    // the parser's message is not passed on: it may quote what it could not parse
    throw new AuditKeyError(`the audit key ${file} is not a PEM private key (berth init makes one)`, 'not-a-private-key');
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new AuditKeyError(`the audit key ${file} is an ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519 (berth init makes one)`, 'not-ed25519');
  }
  return new AuditSigner(key);
}

/** A public key to check checkpoints with, from a PEM file: a public key (SPKI), or a private key whose public half is taken. */
export function loadPublicKey(file: string): TrustedKey {
  return publicKeyFromPem(readKeyFile(file, 'a public key'), file);
}

/** A public key from PEM text; `where` names it in errors. */
export function publicKeyFromPem(text: string | Buffer, where: string): TrustedKey {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: text, format: 'pem' });
  } catch {
    throw new AuditKeyError(`${where} is not a PEM public key`, 'not-a-public-key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new AuditKeyError(`${where} is an ${key.asymmetricKeyType ?? 'unknown'} key, not Ed25519`, 'not-ed25519');
  return { keyId: keyIdOf(key), key };
}

/** A new Ed25519 key pair: the private key as PEM (PKCS#8), the public key as PEM (SPKI), and its id. */
export function generateAuditKey(): { privatePem: string; publicPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: pem(privateKey, 'pkcs8'),
    publicPem: pem(publicKey, 'spki'),
    keyId: keyIdOf(publicKey),
  };
}

const HEX64 = /^[0-9a-f]{64}$/;
const KEY_ID = /^[0-9a-f]{16}$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** A checkpoint from its JSON text, or undefined when the text is not one (a field missing or of the wrong form). */
export function parseCheckpoint(text: string | undefined): Checkpoint | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text ?? '');
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null) return undefined;
  const c = v as Record<string, unknown>;
  const ok =
    c.checkpoint === CHECKPOINT_VERSION &&
    Number.isSafeInteger(c.row) &&
    (c.row as number) >= 1 &&
    typeof c.hash === 'string' &&
    HEX64.test(c.hash) &&
    typeof c.time === 'string' &&
    !Number.isNaN(Date.parse(c.time)) &&
    typeof c.keyId === 'string' &&
    KEY_ID.test(c.keyId) &&
    typeof c.publicKey === 'string' &&
    BASE64.test(c.publicKey) &&
    typeof c.signature === 'string' &&
    BASE64.test(c.signature);
  if (!ok) return undefined;
  const { checkpoint, row, hash, time, keyId, publicKey, signature } = c as unknown as Checkpoint;
  return { checkpoint, row, hash, time, keyId, publicKey, signature };
}

/** A checkpoint found somewhere, as text: in a row of the log (`logRow`), a line of the anchor file, an entry of a bundle. */
export interface CheckpointEntry {
  /** where it was found, for messages: "row 1201", "anchor file line 3" */
  where: string;
  /** the id of the audit row holding it, when it is one */
  logRow?: number;
  /** its line in the anchor file, when it is one */
  line?: number;
  text: string;
}

/** Why a checkpoint does not hold. */
export type AnchorProblemCode =
  /** not a checkpoint (unreadable JSON, a field missing), or one in the log that names a row at or after its own */
  | 'malformed'
  /** signed by a key that is not trusted (not the config's, nor one given with --public-key) */
  | 'unknown-key'
  /** its signature does not hold for the trusted key of its id: forged, or edited after it was signed */
  | 'bad-signature'
  /** the row it signed has another hash now: rows up to it were changed after it was signed */
  | 'hash-mismatch'
  /** it signed a row the log does not have (any more): rows were removed from the log's end */
  | 'beyond-chain';

export interface AnchorProblem {
  code: AnchorProblemCode;
  /** where the checkpoint is (CheckpointEntry.where) */
  where: string;
  /** the row it signed, when it could be read */
  row?: number;
  message: string;
}

/** What the checkpoints prove about a chain that is intact on its own (verifyChain). */
export interface AnchorReport {
  /** the checkpoints that were checked (none without a trusted key) */
  checked: number;
  /** how many of them hold */
  valid: number;
  /** checkpoints that were not checked because no key was given */
  unchecked: number;
  /** the holding checkpoint that signed the newest row: rows 1 to `row` are as they were at `time` */
  last?: { row: number; time: string; keyId: string; where: string; logRow?: number };
  /** the rows no holding checkpoint covers (after last.row), when there are any */
  unanchored?: { from: number; to: number };
  /** every checkpoint that does not hold (any makes the log fail verification) */
  problems: AnchorProblem[];
}

/** The rows the checkpoints name, whose hashes checkAnchors() needs. */
export function namedRows(entries: readonly CheckpointEntry[]): Set<number> {
  return new Set(entries.flatMap((e) => parseCheckpoint(e.text)?.row ?? []));
}

/**
 * Checks checkpoints against a chain already verified intact with rows 1 to `end`, whose
 * `hashes` hold (at least) the rows namedRows() lists. With no trusted key nothing is checked:
 * the checkpoints are counted as unchecked. Each checkpoint must be signed by a trusted key, its
 * signature must hold, and the row it names must still exist with the hash it signed; those that
 * hold anchor the rows up to the newest row one of them names.
 */
export function checkAnchors(input: {
  end: number;
  hashes: ReadonlyMap<number, string>;
  checkpoints: readonly CheckpointEntry[];
  trusted: readonly TrustedKey[];
}): AnchorReport {
  const { end, hashes, checkpoints, trusted } = input;
  if (trusted.length === 0) return { checked: 0, valid: 0, unchecked: checkpoints.length, problems: [], ...uncovered(0, end) };
  const problems: AnchorProblem[] = [];
  let valid = 0;
  let last: AnchorReport['last'];
  for (const entry of checkpoints) {
    const problem = (code: AnchorProblemCode, message: string, row?: number) =>
      problems.push({ code, where: entry.where, row, message: `${entry.where}: ${message}` });
    const c = parseCheckpoint(entry.text);
    if (!c) {
      problem('malformed', 'not a readable checkpoint (a field is missing or of the wrong form)');
      continue;
    }
    if (entry.logRow !== undefined && c.row >= entry.logRow) {
      problem('malformed', `the checkpoint names row ${c.row}, not a row before its own`, c.row);
      continue;
    }
    const key = trusted.find((k) => k.keyId === c.keyId);
    if (!key) {
      const known = trusted.map((k) => k.keyId).join(', ');
      problem('unknown-key', `signed by key ${c.keyId}, which is not a trusted key (${known}); give its public key with --public-key if it is yours`, c.row);
      continue;
    }
    if (!signatureHolds(c, key.key)) {
      problem(
        'bad-signature',
        `the signature of the checkpoint of row ${c.row} does not hold for key ${c.keyId}: it was forged, or edited after it was signed`,
        c.row,
      );
      continue;
    }
    if (c.row > end) {
      problem('beyond-chain', `the checkpoint signed row ${c.row} at ${c.time}, but the log ends at row ${end}: rows were removed from its end`, c.row);
      continue;
    }
    const now = hashes.get(c.row);
    if (now !== c.hash) {
      problem(
        'hash-mismatch',
        `row ${c.row} no longer has the hash the checkpoint signed at ${c.time} (${c.hash.slice(0, 12)}, now ${now?.slice(0, 12) ?? 'unknown'}): rows up to ${c.row} were rewritten after it was signed`,
        c.row,
      );
      continue;
    }
    valid++;
    if (!last || c.row > last.row || (c.row === last.row && c.time > last.time)) {
      last = { row: c.row, time: c.time, keyId: c.keyId, where: entry.where, ...(entry.logRow !== undefined ? { logRow: entry.logRow } : {}) };
    }
  }
  return { checked: checkpoints.length, valid, unchecked: 0, problems, ...(last ? { last } : {}), ...uncovered(last?.row ?? 0, end) };
}

const uncovered = (anchored: number, end: number): Pick<AnchorReport, 'unanchored'> => (end > anchored ? { unanchored: { from: anchored + 1, to: end } } : {});

function signatureHolds(c: Checkpoint, key: KeyObject): boolean {
  try {
    return verify(null, signedBytes(c), key, Buffer.from(c.signature, 'base64'));
  } catch {
    return false;
  }
}
