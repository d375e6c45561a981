import { expect } from 'vitest';
import { formatError, renderSnapshot } from '../../src/render/index.ts';
import type { RenderedStack, RenderOptions, RenderResult, ServiceSpec } from '../../src/model.ts';

/** A policy that allows bind mounts of any host path (and nothing else beyond the default). */
export const ANY_BIND: RenderOptions = { policy: { privileged: false, hostNetwork: false, hostNamespaces: false, bindMounts: ['/'] } };

/** A snapshot of inline text files. */
export function render(files: Record<string, string>, options: RenderOptions = {}): RenderResult {
  const encoded = new Map(Object.entries(files).map(([path, text]) => [path, new TextEncoder().encode(text)]));
  return renderSnapshot({ repo: 'test', commit: { sha: 'abc', author: 'a', email: 'a@x', message: 'm', time: 0 }, files: encoded }, options);
}

/** The stack `name` rendered from `files`; fails the test with its errors if it did not render. */
export function stackOf(files: Record<string, string>, name: string, options: RenderOptions = {}): RenderedStack {
  const result = render(files, options);
  expect(result.errors.map(formatError)).toEqual([]);
  const s = result.stacks.find((x) => x.def.name === name);
  if (!s) throw new Error(`no stack ${name}`);
  if (!s.ok) expect.fail(s.errors.map(formatError).join('\n'));
  return s.stack;
}

/** The one service of a one-file, one-service stack "app". */
export function serviceOf(compose: string, extra: Record<string, string> = {}, options: RenderOptions = {}): ServiceSpec {
  const stack = stackOf({ 'app/compose.yaml': compose, ...extra }, 'app', options);
  return stack.services[0];
}

/** All errors of `files`, repo-wide and per stack, formatted. */
export function errorsOf(files: Record<string, string>, options: RenderOptions = {}): string[] {
  const result = render(files, options);
  return [...result.errors, ...result.stacks.flatMap((s) => (s.ok ? [] : s.errors))].map(formatError);
}
