// What a stack's plan says of networks and volumes of its names that exist on a host, by their
// owner labels (pure): a name berth derives is this stack's own; a name of the repo's stacks is
// the repo's; a name the repo's policy lists is anyone's. Anything else is a conflict, and a plan
// with conflicts is not applied (src/engine/pass.ts).
import { describe, expect, it } from 'vitest';
import { planStack } from '../src/diff/plan.ts';
import type { RenderOptions } from '../src/model.ts';
import type { LiveObject } from '../src/observe/live.ts';
import { STRICT_POLICY } from '../src/render/index.ts';
import { placeStack } from '../src/schedule/place.ts';
import { stackOf } from './render/helpers.ts';

const files = (resources: string) => ({
  'web/compose.yaml': `services:\n  w:\n    image: x\n    networks: [default, n]\n    volumes: [v:/v]\n${resources}`,
  'api/compose.yaml': 'services:\n  a:\n    image: x\n',
});

function plan(resources: string, networks: LiveObject[], volumes: LiveObject[] = [], options: RenderOptions = {}) {
  const stack = stackOf(files(resources), 'web', options);
  const desired = placeStack('r', stack, [{ name: 'h1', labels: {}, state: 'up' }], 'c1', []);
  return planStack({ repo: 'r', stack, stackName: 'web', commit: 'c1', desired, prune: true, live: [{ host: 'h1', containers: [], networks, volumes }] });
}

const own = 'networks:\n  n:\nvolumes:\n  v:\n';

describe("a stack's networks and volumes against their owners on the host", () => {
  it('creates what is missing; uses what is its own', () => {
    expect(plan(own, []).networks.map((n) => n.spec.name)).toEqual(['web_default', 'web_n']);
    const mine = plan(
      own,
      [
        { name: 'web_default', repo: 'r', stack: 'web' },
        { name: 'web_n', repo: 'r', stack: 'web' },
      ],
      [{ name: 'web_v', repo: 'r', stack: 'web' }],
    );
    expect([mine.networks, mine.volumes, mine.conflicts]).toEqual([[], [], undefined]);
  });

  it("refuses a derived name that another repo's stack of the same name holds", () => {
    const p = plan(own, [{ name: 'web_default', repo: 'other', stack: 'web' }], [{ name: 'web_v', repo: 'other', stack: 'web' }]);
    expect(p.conflicts).toEqual([
      'the network web_default on h1 belongs to repo other, stack web: this stack does not reach it',
      'the volume web_v on h1 belongs to repo other, stack web: this stack does not reach it',
    ]);
  });

  it("takes a name of the repo's other stacks only when the repo holds it", () => {
    const shared = 'networks:\n  n: { external: true, name: api_default }\nvolumes:\n  v: { name: web_shared }\n';
    expect(plan(shared, [{ name: 'api_default', repo: 'r', stack: 'api' }], [{ name: 'web_shared', repo: 'r', stack: 'api' }]).conflicts).toBeUndefined();
    // a stack web_x of another repo makes a name that looks like one of web's
    const lookalike = 'networks:\n  n: { external: true, name: web_x_default }\nvolumes:\n  v:\n';
    expect(plan(lookalike, [{ name: 'web_x_default', repo: 'billing', stack: 'web_x' }]).conflicts).toEqual([
      'the network web_x_default on h1 belongs to repo billing, stack web_x: this stack does not reach it',
    ]);
  });

  it("takes anyone's network when the repo's policy lists it", () => {
    const proxy = 'networks:\n  n: { external: true, name: proxy }\nvolumes:\n  v:\n';
    const options = { policy: { ...STRICT_POLICY, externalNetworks: ['proxy'] } };
    expect(plan(proxy, [{ name: 'proxy', repo: 'edge', stack: 'traefik' }], [], options).conflicts).toBeUndefined();
  });
});
