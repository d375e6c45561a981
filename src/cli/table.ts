/** Aligned text tables for the CLI: a header row, then one row per item, columns two spaces apart. */
import { printable } from './text.ts';

/**
 * The rows under their header, each column as wide as its widest cell (the last one not padded);
 * each cell on one line, without control characters (src/cli/text.ts).
 */
export function table(header: string[], rows: string[][]): string {
  const all = [header, ...rows].map((row) => row.map((cell) => printable(cell ?? '', { oneLine: true })));
  const widths = header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  return all
    .map((row) =>
      row
        .map((cell, i) => (cell ?? '').padEnd(widths[i]))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** How long ago `iso` was, the way a person reads it at a glance: `12 s ago`, `3 m ago`, `5 h ago`, `2 d ago`. */
export function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} m ago`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86_400)} d ago`;
}
