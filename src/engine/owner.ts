/**
 * One data folder, one engine config. berth's database holds each stack's syncs, holds and audit
 * by stack name: a second config pointed at the same folder (its hosts unreachable, say) would
 * write its outcomes over the first's. The first config to use a folder is recorded in it
 * (`DATA/owner.json`), and another is refused with what to do (docs/config.md, `dataDir`).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { BerthConfig } from '../config.ts';
import { EngineError } from './errors.ts';

const OWNER_FILE = 'owner.json';

/** The config's identity: its file's absolute path, or `(embedded default)`. */
export function configIdentity(config: Pick<BerthConfig, 'source'>): string {
  return config.source.startsWith('(') ? config.source : resolve(config.source);
}

/** Records the config as the data folder's owner, or throws when another config owns it. */
export function claimDataDir(config: Pick<BerthConfig, 'source' | 'dataDir'>): void {
  const me = configIdentity(config);
  const file = join(config.dataDir, OWNER_FILE);
  let owner: { config?: string } | undefined;
  try {
    owner = JSON.parse(readFileSync(file, 'utf8')) as { config?: string };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new EngineError(`cannot read ${file}: ${(err as Error).message}`, 'data-dir-owned');
  }
  if (owner?.config === me) return;
  if (owner?.config) {
    throw new EngineError(
      `the data folder ${config.dataDir} holds the state of another config (${owner.config}); ` +
        `give ${me} a dataDir of its own, or, if it takes that config's place, delete ${file}`,
      'data-dir-owned',
    );
  }
  mkdirSync(config.dataDir, { recursive: true });
  writeFileSync(file, `${JSON.stringify({ config: me, since: new Date().toISOString() })}\n`);
}
