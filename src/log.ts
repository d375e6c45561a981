/**
 * Structured logs (pino) on stderr, so that command output on stdout stays clean. Pretty when a
 * person watches a terminal, JSON lines otherwise. Callers add stack, host and commit as bindings.
 */
import { pino, type Logger } from 'pino';

export function createLogger(level = process.env.BERTH_LOG_LEVEL ?? 'info'): Logger {
  if (process.stderr.isTTY && !process.env.BERTH_LOG_JSON) {
    return pino({ level, transport: { target: 'pino-pretty', options: { destination: 2, ignore: 'pid,hostname' } } });
  }
  return pino({ level, base: undefined }, pino.destination(2));
}
