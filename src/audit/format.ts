/** Parsing and printing for `berth audit`. */
import { parseCheckpoint } from './anchor.ts';
import type { AuditRow } from './log.ts';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})?)?$/i;

/**
 * Parses a `--since`/`--until` value: a duration meaning "that long before now" (`90s`, `30m`,
 * `2h`, `7d`, `2w`) or an ISO 8601 date or date-time (`2024-05-01`, `2024-05-01T10:00`,
 * `2024-05-01T10:00:00.000Z`, `2024-05-01T12:00+02:00`). Times without a zone are UTC, like the
 * times the audit log shows. Throws a clear Error for anything else.
 */
export function parseSince(s: string, now: Date = new Date()): Date {
  const text = s.trim();
  const duration = /^(\d+)([smhdw])$/.exec(text);
  if (duration) return new Date(now.getTime() - Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS]);
  const iso = ISO.exec(text);
  if (iso) {
    const [, y, mo, d, h = '00', mi = '00', sec = '00', zone] = iso;
    const date = new Date(`${text.slice(0, 10)}T${text.slice(11) || '00:00'}${zone ? '' : 'Z'}`);
    // Date() rolls over out-of-range fields (Feb 30 -> Mar 1); refuse those instead.
    const valid =
      Number(mo) >= 1 &&
      Number(mo) <= 12 &&
      Number(d) >= 1 &&
      Number(d) <= daysIn(Number(y), Number(mo)) &&
      Number(h) <= 23 &&
      Number(mi) <= 59 &&
      Number(sec) <= 59;
    if (valid && !Number.isNaN(date.getTime())) return date;
  }
  throw new Error(`invalid time "${s}": give a duration such as 30m, 2h or 7d, or an ISO date or time such as 2024-05-01 or 2024-05-01T10:00:00Z`);
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/**
 * Renders audit rows as a table for a terminal: a header, then one line per row with time (UTC),
 * kind, stack/service, host, short commit, actor, outcome and message (a checkpoint's: the row it
 * signed and the key, its JSON being in the JSON output). The diff is left out (the JSON output has it); control characters are blanked so a message cannot drive the terminal.
 */
export function formatAuditTable(rows: AuditRow[]): string {
  const header = ['TIME', 'KIND', 'STACK/SERVICE', 'HOST', 'COMMIT', 'ACTOR', 'OUTCOME', 'MESSAGE'];
  const lines = rows.map((r) =>
    [
      r.time.replace(/\.\d+Z$/, 'Z'),
      r.kind,
      [r.stack, r.service].filter(Boolean).join('/') || '-',
      r.host ?? '-',
      r.commitSha?.slice(0, 7) ?? '-',
      r.actor,
      r.outcome,
      r.kind === 'audit.checkpoint' ? checkpointSummary(r.message) : (r.message ?? ''),
    ].map(printable),
  );
  const table = [header, ...lines];
  const widths = header.map((_, i) => Math.max(...table.map((l) => l[i]!.length)));
  return table
    .map((l) =>
      l
        .map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

// eslint-disable-next-line no-control-regex -- blanking control characters is the point
const printable = (s: string) => s.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();

/** A checkpoint row's message in a line: the row signed and the key's id (or the message as it is, when not a checkpoint). */
function checkpointSummary(message: string | undefined): string {
  const c = parseCheckpoint(message);
  return c ? `signed row ${c.row} (key ${c.keyId})` : (message ?? '');
}
