/**
 * render: a snapshot of a repo (files at one commit) to the stacks it describes, fully rendered,
 * or to errors located as `file:line:col: message`. Pure: no file system, Docker or network, and
 * nothing from the process environment (interpolation reads only the stack's .env), so a commit
 * renders the same wherever berth runs; the only outside values are the secrets and configs the
 * engine hands in through `options`.
 */
import type { RenderOptions, RenderResult, Snapshot, SourceError } from '../model.ts';
import { listStacks } from './manifest.ts';
import { renderStack } from './stack.ts';

export { COMPOSE_NAMES, MANIFEST, STACK_NAME } from './manifest.ts';
export { STRICT_POLICY } from './policy.ts';

/**
 * Renders every stack of a snapshot. Errors in the stack listing (berth.yaml, or folder
 * discovery) are repo-wide and leave `stacks` empty; a stack's own errors stay in its entry and
 * do not keep the other stacks from rendering. `options.policy` is what the repo may ask of the
 * hosts (default: nothing beyond an ordinary container).
 */
export function renderSnapshot(snapshot: Snapshot, options: RenderOptions = {}): RenderResult {
  const { errors, stacks } = listStacks(snapshot.files);
  return { errors, stacks: stacks.map((def) => renderStack(def, { files: snapshot.files, modes: snapshot.modes, options })) };
}

/** `file:line:col: message` (just `file: message` when the position is unknown). */
export function formatError(e: SourceError): string {
  return e.line > 0 ? `${e.file}:${e.line}:${e.col}: ${e.message}` : `${e.file}: ${e.message}`;
}
