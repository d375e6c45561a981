/**
 * Structured logs (pino) on stderr, so that command output on stdout stays clean. Readable lines
 * when a person watches a terminal (time, level, where: stack@host and commit, the message, then
 * the other fields on the same line), JSON lines otherwise or when asked (`--log-format json`,
 * `BERTH_LOG_JSON`). Callers add stack, host and commit as bindings.
 */
import { createRequire } from 'node:module';
import { pino, type Logger } from 'pino';
import type { PrettyOptions } from 'pino-pretty';

export type LogFormat = 'pretty' | 'json';

export interface LogOptions {
  /** pino's level name; default $BERTH_LOG_LEVEL, else info */
  level?: string;
  /** default: pretty on a terminal, JSON otherwise (and with BERTH_LOG_JSON set) */
  format?: LogFormat;
}

export function createLogger({ level = process.env.BERTH_LOG_LEVEL ?? 'info', format }: LogOptions = {}): Logger {
  const pretty = (format ?? (process.stderr.isTTY && !process.env.BERTH_LOG_JSON ? 'pretty' : 'json')) === 'pretty';
  if (pretty) return pino({ level, base: undefined }, prettyStream());
  return pino({ level, base: undefined }, pino.destination(2));
}

/** The fields a pretty line shows before the message, as `stack@host commit`. */
const WHERE = ['repo', 'stack', 'host', 'commit'];

/**
 * pino-pretty, in this process and synchronous (a worker thread would start for a transport, and
 * the last lines of a command that exits could be lost). Loaded only here: a server logging JSON
 * never loads it.
 */
function prettyStream(): NodeJS.WritableStream {
  const pretty = createRequire(import.meta.url)('pino-pretty') as (options: PrettyOptions) => NodeJS.WritableStream;
  return pretty({
    destination: 2,
    sync: true,
    colorize: Boolean(process.stderr.isTTY) && !process.env.NO_COLOR,
    translateTime: 'SYS:HH:MM:ss',
    singleLine: true,
    ignore: ['pid', 'hostname', ...WHERE].join(','),
    messageFormat: (log, messageKey) => {
      const str = (k: string) => (typeof log[k] === 'string' || typeof log[k] === 'number' ? String(log[k]) : undefined);
      const place = [str('stack') ?? str('repo'), str('host')].filter(Boolean).join('@');
      const where = [place, str('commit')?.slice(0, 7)].filter(Boolean).join(' ');
      return `${where ? `${where}: ` : ''}${str(messageKey) ?? ''}`;
    },
  });
}
