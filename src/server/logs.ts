/**
 * The body of `GET /api/v1/stacks/:name/logs` (docs/api.md, "Logs"): a stack's log records as
 * text lines (`web.2@h1 | ...`, the default) or, asked with `Accept: application/x-ndjson`, as
 * JSON lines (the first one the replicas read). Sent as it comes (chunked): a followed answer
 * stays open until the client goes, every container stopped, or berth stops.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { pipeline, Transform, type Readable } from 'node:stream';
import type { FastifyBaseLogger, FastifyReply } from 'fastify';
import { formatLine, formatNotice, isNotice, prefixWidth, type LogRecord } from '../engine/log-lines.ts';
import type { LogStream } from '../engine/logs.ts';

export const NDJSON = 'application/x-ndjson';

/** Whether the client asked for JSON lines. */
export function wantsNdjson(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((part) => part.trim().split(';')[0]!.trim().toLowerCase() === NDJSON);
}

/**
 * Sends the answer: its status and headers at once (a followed answer of quiet containers has no
 * line to send yet, and a client waits for the headers), then the records as they come. When the
 * client goes, the records are destroyed, which stops the reading from the hosts.
 */
export function sendLogs(
  reply: FastifyReply,
  stream: LogStream,
  { ndjson, log, keepAliveMs }: { ndjson: boolean; log: FastifyBaseLogger; keepAliveMs: number },
): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    // those fastify's hooks set (the rate limit's)
    ...(Object.fromEntries(Object.entries(reply.getHeaders()).filter(([, v]) => v !== undefined)) as OutgoingHttpHeaders),
    'content-type': ndjson ? `${NDJSON}; charset=utf-8` : 'text/plain; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    // what containers wrote is never taken for HTML by a browser
    'x-content-type-options': 'nosniff',
    'x-accel-buffering': 'no', // nginx: send the lines as they come
  });
  res.flushHeaders();
  pipeline(logBody(stream, { ndjson, keepAliveMs }), res, (err) => {
    if (err && err.code !== 'ERR_STREAM_PREMATURE_CLOSE') log.warn({ err: err.message }, 'sending logs failed');
  });
}

/**
 * The answer's bytes from the stream's records; destroying it (the client went) destroys the
 * records, which stops the reading. JSON lines get an empty line every `keepAliveMs` (clients skip
 * it), so that a proxy does not close a follow of quiet containers.
 */
export function logBody(stream: LogStream, { ndjson, keepAliveMs = 15_000 }: { ndjson: boolean; keepAliveMs?: number }): Readable {
  const width = prefixWidth(stream.replicas);
  const encode = new Transform({
    writableObjectMode: true,
    transform(record: LogRecord, _enc, done) {
      done(null, ndjson ? `${JSON.stringify(record)}\n` : `${isNotice(record) ? formatNotice(record) : formatLine(record, width)}\n`);
    },
  });
  if (ndjson) {
    // JSON lines begin with the replicas, sent at once
    encode.push(`${JSON.stringify({ replicas: stream.replicas })}\n`);
    const timer = setInterval(() => encode.push('\n'), keepAliveMs);
    timer.unref();
    encode.on('close', () => clearInterval(timer));
    encode.on('end', () => clearInterval(timer));
    stream.records.on('end', () => clearInterval(timer));
  }
  return pipeline(stream.records, encode, () => undefined);
}
