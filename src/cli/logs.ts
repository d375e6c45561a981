/**
 * `berth logs`: a stack's log records as the terminal shows them. Each line carries its replica's
 * prefix (`web.2@h1 | ...`, padded to the longest), in a colour of its own per replica on a
 * terminal (none when stdout is not one, or with NO_COLOR); berth's notices go to stderr. What the
 * containers wrote is their own text, but a container is not trusted with the terminal: on a
 * terminal its control characters are dropped (src/cli/text.ts), tabs kept; piped, it is as written.
 */
import { formatLine, isNotice, prefixWidth, replicaPrefix, type LogRecord, type LogReplica } from '../engine/log-lines.ts';
import { printable } from './text.ts';

/** Cyan, yellow, green, magenta, blue, and their bright kin, as docker compose cycles them. */
const COLOURS = [36, 33, 32, 35, 34, 96, 93, 92, 95, 94];

export interface PrintOptions {
  /** colour each replica's prefix */
  colour: boolean;
  /** stdout is a terminal: drop control characters */
  terminal: boolean;
}

/** Whether prefixes are coloured: on a terminal, unless NO_COLOR is set (to anything but ''). */
export function useColour(isTty: boolean | undefined, env: NodeJS.ProcessEnv = process.env): boolean {
  return Boolean(isTty) && !env.NO_COLOR;
}

/** What a record prints: a line on stdout, or a notice on stderr; each ends with a newline. */
export type Printed = { out: string } | { err: string };

/** Prints the records of an answer whose replicas are `replicas` (a replica that comes later gets the next colour). */
export function logPrinter(replicas: readonly LogReplica[], { colour, terminal }: PrintOptions): (r: LogRecord) => Printed {
  const colours = new Map(replicas.map((r, i) => [replicaPrefix(r), COLOURS[i % COLOURS.length]!]));
  const width = prefixWidth(replicas);
  const clean = (s: string) => (terminal ? printable(s) : s);
  return (r) => {
    if (isNotice(r)) return { err: `berth: ${clean(r.message)}\n` };
    const text = formatLine({ ...r, service: clean(r.service), host: clean(r.host), text: clean(r.text) }, width);
    if (!colour) return { out: `${text}\n` };
    const prefix = replicaPrefix(r);
    let code = colours.get(prefix);
    if (code === undefined) colours.set(prefix, (code = COLOURS[colours.size % COLOURS.length]!));
    const cut = text.indexOf(' | ');
    return { out: `\x1b[${code}m${text.slice(0, cut + 2)}\x1b[0m${text.slice(cut + 2)}\n` };
  };
}
