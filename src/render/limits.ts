/**
 * What one commit may ask of the engine (InputLimits, docs/config.md "Limits"): the checks render
 * makes, each refusal located and naming the `limits.` key that would allow more. Pure.
 */
import { INPUT_LIMITS, type InputLimits, type RenderedStack, type RenderOptions, type SourceError, type StackRender, type UnreadFile } from '../model.ts';
import { eligibleHosts, mismatch } from '../schedule/place.ts';
import { sizeText } from './values.ts';

/** The limits render applies: the engine's, each one it does not set at its default. */
export function limitsOf(options: RenderOptions | undefined): InputLimits {
  return { ...INPUT_LIMITS, ...options?.limits };
}

/** Why a file the snapshot did not read cannot be used (the file itself is the place: nothing of it was parsed). */
export function unreadError(file: string, u: UnreadFile, limits: InputLimits): SourceError {
  const message =
    u.limit === 'blobSize'
      ? `${sizeText(u.size)}, over limits.blobSize (${sizeText(limits.blobSize)}): berth does not read a file this big`
      : `not read: the commit's files passed limits.snapshotSize (${sizeText(limits.snapshotSize)}) before it (it has ${sizeText(u.size)}); berth reads the smallest files first`;
  return { file, line: 0, col: 0, message };
}

/** A Compose file (or berth.yaml) over limits.yamlSize; undefined when within. */
export function yamlSizeError(file: string, bytes: number, limits: InputLimits): SourceError | undefined {
  if (bytes <= limits.yamlSize) return undefined;
  return { file, line: 0, col: 0, message: `${sizeText(bytes)}, over limits.yamlSize (${sizeText(limits.yamlSize)})` };
}

/**
 * The containers a stack asks for: each replicated service's replicas, and a global service once
 * on each configured host its stack's `hosts:` and its constraints pick (once in all when the
 * hosts are not given). Host states do not count: a host that is down now may be back.
 */
export function containersOf(stack: RenderedStack, hosts: RenderOptions['hosts']): number {
  const infos = (hosts ?? []).map((h) => ({ ...h, state: 'up' as const }));
  const stackHosts = hosts === undefined ? [] : eligibleHosts(stack.hosts, infos);
  let n = 0;
  for (const svc of stack.services) {
    if (svc.mode === 'replicated') n += svc.replicas;
    else n += hosts === undefined ? 1 : stackHosts.filter((h) => !mismatch(svc, h)).length;
  }
  return n;
}

/**
 * Holds the repo's stacks to limits.repoContainers: in the order the repo lists them, each stack
 * that renders counts its containers; a stack that would take the total over is refused (at its
 * first Compose file) and counts nothing, so the stacks listed before it, and smaller ones after
 * it, still run.
 */
export function withinRepoLimit(stacks: StackRender[], hosts: RenderOptions['hosts'], limits: InputLimits): StackRender[] {
  let total = 0;
  return stacks.map((s) => {
    if (!s.ok) return s;
    const n = containersOf(s.stack, hosts);
    if (total + n <= limits.repoContainers) {
      total += n;
      return s;
    }
    const message = `stack ${s.def.name} asks for ${n} containers; with the ${total} of the stacks listed before it the repo would run ${total + n}, over limits.repoContainers (${limits.repoContainers}) of the engine config`;
    return { def: s.def, ok: false, errors: [{ file: s.def.composeFiles[0] ?? '', line: 0, col: 0, message }] };
  });
}
