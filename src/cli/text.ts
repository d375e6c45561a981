/**
 * Text the CLI prints that it did not write itself: commit messages and authors, Compose files in a
 * diff, stack and service names, error messages quoting a repo, what a server or a Docker host
 * said. Whoever can push to a repo could put terminal control sequences there (`\x1b[2J` clears the
 * screen, others move the cursor, rewrite earlier lines or set the window's title), so every such
 * string goes through `printable` before it reaches the terminal.
 */

// C0 (but tab and newline), DEL and C1: CR can rewrite a line, ESC and CSI (0x9b) start sequences
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

/**
 * `text` without control characters. Multi-line text (a diff, a commit message, an error) keeps its
 * newlines and tabs; a single line (`{ oneLine: true }`, a table's cell) has them turned into spaces.
 */
export function printable(text: string, { oneLine = false }: { oneLine?: boolean } = {}): string {
  const kept = text.replace(CONTROL, '');
  return oneLine ? kept.replace(/[\t\n]/g, ' ') : kept;
}
