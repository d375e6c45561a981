/**
 * Digest pinning, the pure part: which replicas run an image a registry can pin, and the replica
 * as created from `name:tag@sha256:...`, so that every replica on every host runs the same bits
 * (docs/how-it-works.md, "Images"). The digest is not part of the spec hash: a replica created
 * before pinning is not replaced for it, and a moved tag changes nothing until a spec is applied.
 */
import { LABEL } from '../model.ts';
import type { DesiredContainer } from './container.ts';

const DIGEST = /@(sha256:[0-9a-f]{64})$/;

/** The digest an image reference is pinned to (`...@sha256:...`), if any. */
export function digestIn(image: string): string | undefined {
  return DIGEST.exec(image)?.[1];
}

/** The reference without the digest it is pinned to: `name:tag@sha256:...` -> `name:tag`. */
export function withoutDigest(image: string): string {
  return image.replace(DIGEST, '');
}

/** `sha256:0123456789ab` (12 hex digits), as plans and views show a digest. */
export function shortDigest(digest: string | undefined): string {
  return digest ? digest.slice(0, 19) : 'unpinned';
}

/**
 * Whether a replica's image is one a registry pins: not one berth builds (it keeps its content
 * hash), not one pinned in the Compose file already (used as written), not `pull_policy: never`
 * (the host's own image).
 */
export function pinnable(d: Pick<DesiredContainer, 'create' | 'build' | 'pull'>): boolean {
  const image = d.create.Image ?? '';
  return image !== '' && !d.build && d.pull !== 'never' && d.pull !== 'build' && !digestIn(image);
}

/** The replica created from its image at `digest`: the reference, a label with the digest, and its view saying it. */
export function pinned(d: DesiredContainer, digest: string): DesiredContainer {
  const image = `${d.create.Image}@${digest}`;
  const view = d.view.replace(/^image: .*$/m, `image: ${image}`);
  return {
    ...d,
    view,
    create: { ...d.create, Image: image, Labels: { ...d.create.Labels, [LABEL.digest]: digest, [LABEL.view]: view } },
  };
}
