// handChanges (src/diff/drift.ts): a live container's inspect data against the desired container.
import type Dockerode from 'dockerode';
import { describe, expect, it } from 'vitest';
import { handChanges } from '../src/diff/drift.ts';
import type { DesiredContainer } from '../src/schedule/container.ts';

const VIEW = 'image: web:v1\nenvironment:\n  MODE: prod\nports:\n  - 8080:80\n';

const desired = {
  host: 'h0',
  stack: 's',
  service: 'web',
  slot: 1,
  name: 's-web-1',
  specHash: 'abc',
  view: VIEW,
  create: { Image: 'web:v1', Env: ['MODE=prod'], HostConfig: { PortBindings: { '80/tcp': [{ HostPort: '8080' }] } } },
} as unknown as DesiredContainer;

/** Inspect data as Docker answers it, with `change` applied. */
function inspect(
  change: { image?: string; env?: string[]; ports?: Record<string, Array<{ HostPort: string }>>; mounts?: unknown[] } = {},
): Dockerode.ContainerInspectInfo {
  return {
    Config: { Image: change.image ?? 'web:v1', Env: change.env ?? ['MODE=prod', 'PATH=/bin'] },
    HostConfig: { PortBindings: change.ports ?? { '80/tcp': [{ HostIp: '', HostPort: '8080' }] } },
    Mounts: change.mounts ?? [],
  } as unknown as Dockerode.ContainerInspectInfo;
}

describe('handChanges', () => {
  it('finds nothing in a container as berth made it (the image sets PATH), and leaves the view as Git renders it', () => {
    const found = handChanges(inspect(), desired, ['PATH=/bin']);
    expect(found.changes).toEqual([]);
    expect(found.view).toBe(VIEW);
  });

  it.each([
    { what: 'image', change: { image: 'web:hacked' }, changes: ['image: web:hacked (wants web:v1)'], view: /^image: web:hacked$/m },
    { what: 'environment', change: { env: ['MODE=debug', 'PATH=/bin'] }, changes: ['environment MODE: debug (wants prod)'], view: /^ {2}MODE: debug$/m },
    {
      what: 'a secret in the environment, masked',
      change: { env: ['MODE=prod', 'API_TOKEN=hunter2', 'PATH=/bin'] },
      changes: [expect.stringMatching(/^environment API_TOKEN: <masked sha256:[0-9a-f]{12}> \(not in Git\)$/)],
      view: /API_TOKEN: <masked/,
    },
    { what: 'ports', change: { ports: { '80/tcp': [{ HostPort: '9090' }] } }, changes: ['ports: 9090:80 (wants 8080:80)'], view: /^ {2}- 9090:80$/m },
    {
      what: 'mounts',
      change: { mounts: [{ Type: 'bind', Source: '/etc', Destination: '/data', RW: false }] },
      changes: ['mounts: bind:/etc:/data:ro (wants none)'],
      view: /^ {2}- \/etc:\/data:ro$/m,
    },
  ])('finds a changed $what and shows the live value in the view', ({ change, changes, view }) => {
    const found = handChanges(inspect(change), desired, ['PATH=/bin']);
    expect(found.changes).toEqual(changes);
    expect(found.view).toMatch(view);
    expect(found.view).not.toContain('hunter2');
    expect(found.view).toMatch(/^image: /); // the desired view's keys, in its order
  });
});
