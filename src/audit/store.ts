/**
 * Opens the engine's database as its config says: the SQLite file in dataDir (the default), or the
 * PostgreSQL of `database:` (docs/config.md, "Database"), reading the files that hold its URL,
 * password and TLS material.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BerthConfig, DatabaseConfig } from '../config.ts';
import { ConfigError } from '../config.ts';
import { openDatabase, type Db } from './db.ts';
import { openPostgres, readTls, type PostgresOptions } from './pg.ts';

export function openStore(config: Pick<BerthConfig, 'dataDir' | 'database'>): Db {
  return config.database ? openPostgres(postgresOptions(config.database)) : openDatabase(join(config.dataDir, 'berth.db'));
}

/** What the driver needs of `database:`, with the files read (a file that cannot be read is said so, by name). */
export function postgresOptions(d: DatabaseConfig): PostgresOptions {
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new ConfigError(`database.${what}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const url = d.url ?? read(d.urlFile!, 'urlFile');
  if (!/^postgres(ql)?:\/\//.test(url)) throw new ConfigError(`database.urlFile: ${d.urlFile} does not hold a postgres:// URL`);
  let tls: PostgresOptions['tls'];
  try {
    tls = d.tls && readTls(d.tls);
  } catch (err) {
    throw new ConfigError(
      `database.tls: cannot read ${(err as NodeJS.ErrnoException).path ?? 'a file'}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
  return {
    url,
    ...(d.passwordFile ? { password: read(d.passwordFile, 'passwordFile') } : {}),
    ...(tls ? { tls } : {}),
    timeoutMs: d.timeoutMs,
  };
}
