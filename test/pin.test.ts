// Digest pinning as plain data (src/schedule/pin.ts, and the planner's rule in src/diff/plan.ts):
// which replicas a registry pins, the replica created from name:tag@sha256:..., and what a pinned
// spec means for replicas that run: a moved digest replaces them, one created before pinning stays.
import { describe, expect, it } from 'vitest';
import { planDiff, planStack } from '../src/diff/plan.ts';
import { LABEL } from '../src/model.ts';
import type { LiveContainer } from '../src/observe/live.ts';
import { liveOf } from './harness/live.ts';
import { digestIn, pinnable, pinned, shortDigest } from '../src/schedule/pin.ts';
import { placeStack } from '../src/schedule/place.ts';
import { stackOf } from './render/helpers.ts';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

const stack = (extra = '') => stackOf({ 'app/compose.yaml': `services:\n  web:\n    image: ghcr.io/acme/web:1.4\n${extra}` }, 'app');
const desired = (extra = '') => placeStack('r', stack(extra), [{ name: 'h1', labels: {}, state: 'up' }], 'c1', []);

/** The live container a desired replica became, carrying `digest` when it was created pinned. */
const running = (d: ReturnType<typeof desired>[number], digest?: string) => liveOf(d, digest ? { digest } : {});

const plan = (d: ReturnType<typeof desired>, live: LiveContainer[]) =>
  planStack({
    repo: 'r',
    stack: stack(),
    stackName: 'app',
    commit: 'c2',
    desired: d,
    prune: true,
    live: [{ host: 'h1', containers: live, networks: [], volumes: [] }],
  });

describe('pinning', () => {
  it('reads the digest of a pinned reference, and shows one short', () => {
    expect(digestIn(`ghcr.io/acme/web:1.4@${A}`)).toBe(A);
    expect(digestIn('ghcr.io/acme/web:1.4')).toBeUndefined();
    expect(shortDigest(A)).toBe(`sha256:${'a'.repeat(12)}`);
    expect(shortDigest(undefined)).toBe('unpinned');
  });

  it('pins registry images, not built ones, ones pinned as written, or pull_policy: never', () => {
    expect(pinnable(desired()[0]!)).toBe(true);
    expect(pinnable(desired('    pull_policy: never\n')[0]!)).toBe(false);
    const written = placeStack(
      'r',
      stackOf({ 'app/compose.yaml': `services:\n  web:\n    image: ghcr.io/acme/web@${A}\n` }, 'app'),
      [{ name: 'h1', labels: {}, state: 'up' }],
      'c1',
      [],
    );
    expect(pinnable(written[0]!)).toBe(false);
    expect(pinnable({ create: { Image: 'x' }, build: { stack: 'a', service: 'b', ref: 'x', image: 'x', spec: {} as never, context: [] } })).toBe(false);
  });

  it('creates the replica from name:tag@digest, with the digest on a label and in its view; the spec hash stays', () => {
    const d = desired()[0]!;
    const p = pinned(d, A);
    expect(p.create.Image).toBe(`ghcr.io/acme/web:1.4@${A}`);
    expect(p.create.Labels?.[LABEL.digest]).toBe(A);
    expect(p.view).toMatch(new RegExp(`^image: ghcr\\.io/acme/web:1\\.4@${A}$`, 'm'));
    expect(p.create.Labels?.[LABEL.view]).toBe(p.view);
    expect(p.specHash).toBe(d.specHash);
    expect(d.create.Image).toBe('ghcr.io/acme/web:1.4'); // the replica given is left as it was
  });

  it('keeps a replica that runs the pinned digest, or that was created before pinning; replaces one whose digest moved', () => {
    const d = desired();
    expect(plan([pinned(d[0]!, A)], [running(d[0]!, A)]).actions.map((a) => a.kind)).toEqual(['keep']);
    expect(plan([pinned(d[0]!, A)], [running(d[0]!)]).actions.map((a) => a.kind)).toEqual(['keep']);
    const moved = plan([pinned(d[0]!, B)], [running(d[0]!, A)]).actions;
    expect(moved).toMatchObject([{ kind: 'replace', reason: `image moved: ${shortDigest(A)} -> ${shortDigest(B)}` }]);
  });

  it("says in the plan's diff when a replica is created from an image no registry pinned", () => {
    const d = desired();
    expect(planDiff(plan([{ ...d[0]!, unpinned: true }], []))).toContain(
      '# create web#1 on h1: missing; image ghcr.io/acme/web:1.4 unpinned: no registry answers for it\n',
    );
    expect(planDiff(plan([pinned(d[0]!, A)], []))).toMatch(/^# create web#1 on h1: missing\n/m);
  });
});
