// The harness's private registry (test/harness/registry.ts), as the global setup provides it: the
// test daemons pull from it over HTTPS with its user's password only, and the digest the registry
// serves for a tag is the one a daemon records when it pulls it.
import Dockerode from 'dockerode';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { uniqueName } from './harness/docker.ts';
import { IMAGES } from './harness/images.ts';
import { manifestDigest, moveTag, pushImage, registryAuth } from './harness/registry.ts';

const registry = inject('registry');
const dockers = inject('dockers');
/** The daemons that did not push the shared images: the global setup pushed them from the first. */
const puller = new Dockerode({ socketPath: dockers[1].socketPath });
const other = new Dockerode({ socketPath: dockers[2].socketPath });

/** Pulls `ref` and waits for the pull to end; rejects with the daemon's reason when it fails. */
async function pull(docker: Dockerode, ref: string, authconfig?: ReturnType<typeof registryAuth>): Promise<void> {
  const stream = await docker.pull(ref, authconfig ? { authconfig } : {});
  const output = await new Promise<{ error?: string }[]>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, out: { error?: string }[]) => (err ? reject(err) : resolve(out)));
  });
  const failed = output.find((o) => o.error);
  if (failed) throw new Error(failed.error);
}

/** Whether the daemon has an image by that reference. */
const has = (docker: Dockerode, ref: string) =>
  docker
    .getImage(ref)
    .inspect()
    .then(
      () => true,
      (err: { statusCode?: number }) => (err.statusCode === 404 ? false : Promise.reject(err)),
    );

/** Removes the reference (and, with it, the digest the pull recorded): other test files need daemons that never pulled. */
async function forget(docker: Dockerode, ref: string): Promise<void> {
  await docker
    .getImage(ref)
    .remove()
    .catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) throw err;
    });
}

const pulled: [Dockerode, string][] = [];
afterAll(async () => {
  await Promise.all(pulled.map(([docker, ref]) => forget(docker, ref)));
});

describe('the test registry', () => {
  it('lets a daemon pull with the right password, and serves the digest the daemon records', async () => {
    const { ref, digest } = registry.images.web1;
    expect(ref).toBe(`${registry.host}/private/web:1`);
    expect(registry.host).toMatch(/^10\.231\.\d+\.1:\d+$/);
    expect(await has(puller, ref)).toBe(false);

    pulled.push([puller, ref]);
    await pull(puller, ref, registryAuth(registry));
    const image = await puller.getImage(ref).inspect();
    expect(await manifestDigest(registry, 'private/web:1')).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(await manifestDigest(registry, ref)).toBe(digest);
    expect(image.RepoDigests).toContain(`${registry.host}/private/web@${digest}`);
    expect(image.Config.Cmd).toEqual((await puller.getImage(IMAGES.webV1).inspect()).Config.Cmd);
  });

  it('refuses an anonymous pull and a wrong password', async () => {
    const { ref } = registry.images.web2;
    pulled.push([other, ref]);
    await expect(pull(other, ref)).rejects.toThrow(/no basic auth credentials/);
    await expect(pull(other, ref, registryAuth(registry, registry.wrongPassword))).rejects.toThrow(/unauthorized: authentication required/);
    expect(await has(other, ref)).toBe(false);
  });

  it('pushes without leaving the tag on the pushing daemon, and moves a tag', async () => {
    const pusher = dockers[0];
    const name = `private/${uniqueName('moving')}:1`;
    const first = await pushImage(registry, pusher, IMAGES.webV1, name);
    expect(first.ref).toBe(`${registry.host}/${name}`);
    expect(await has(new Dockerode({ socketPath: pusher.socketPath }), first.ref)).toBe(false);
    // Two pushes of one image are one manifest: the shared private/web:1 has the same digest.
    expect(first.digest).toBe(registry.images.web1.digest);

    const moved = await moveTag(registry, pusher, IMAGES.webUnhealthy, first.ref);
    expect(moved.previousDigest).toBe(first.digest);
    expect(moved.digest).not.toBe(first.digest);
    expect(await manifestDigest(registry, name)).toBe(moved.digest);
    await expect(moveTag(registry, pusher, IMAGES.webUnhealthy, name)).rejects.toThrow(/the tag did not move/);
    await expect(manifestDigest(registry, `private/${uniqueName('never')}:1`)).rejects.toThrow(/answered 404/);
  });
});
