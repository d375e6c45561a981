// Test images, built locally from the static busybox binary (no registry is needed).
import { readFile } from 'node:fs/promises';
import type Dockerode from 'dockerode';
import { pack } from 'tar-stream';

/** The test images. The web images serve their variant's name at / on port 80 and stop at once on SIGTERM. */
export const IMAGES = {
  /** busybox with its applets; the base of the others. */
  base: 'berth-test/base:1',
  /** Serves "v1"; healthy. */
  webV1: 'berth-test/web:v1',
  /** Serves "v2"; healthy. */
  webV2: 'berth-test/web:v2',
  /** Serves "unhealthy"; its health check always fails. */
  webUnhealthy: 'berth-test/web:unhealthy',
} as const;

const BUSYBOX = '/bin/busybox';

const BASE_DOCKERFILE = `FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
`;

// sh as PID 1 with a TERM trap: busybox httpd as PID 1 would ignore SIGTERM and `docker stop` would wait.
const webDockerfile = (healthCmd: string) => `FROM ${IMAGES.base}
COPY index.html /www/index.html
EXPOSE 80
HEALTHCHECK --interval=1s --timeout=1s --retries=3 CMD ${healthCmd}
CMD ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 80 -h /www & wait"]
`;

const WEB_VARIANTS: { image: string; body: string; healthCmd: string }[] = [
  { image: IMAGES.webV1, body: 'v1', healthCmd: 'wget -q -O- http://127.0.0.1/ || exit 1' },
  { image: IMAGES.webV2, body: 'v2', healthCmd: 'wget -q -O- http://127.0.0.1/ || exit 1' },
  { image: IMAGES.webUnhealthy, body: 'unhealthy', healthCmd: 'exit 1' },
];

async function exists(docker: Dockerode, image: string): Promise<boolean> {
  return docker
    .getImage(image)
    .inspect()
    .then(
      () => true,
      () => false,
    );
}

/** Builds one image from in-memory files (a tar context) and fails with the build's own error. */
export async function buildImage(docker: Dockerode, image: string, files: Record<string, string | Buffer>): Promise<void> {
  const context = pack();
  for (const [name, content] of Object.entries(files)) {
    context.entry({ name, mode: name === 'busybox' ? 0o755 : 0o644 }, content);
  }
  context.finalize();
  // tar-stream's pack is a streamx Readable: it pipes like a Node stream, which is all dockerode needs.
  const stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, { t: image, rm: true, forcerm: true });
  const output = await new Promise<{ stream?: string; error?: string }[]>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, out: { stream?: string; error?: string }[]) => (err ? reject(err) : resolve(out)));
  });
  const failed = output.find((o) => o.error);
  if (failed) {
    const log = output
      .map((o) => o.stream ?? '')
      .join('')
      .trimEnd();
    throw new Error(`Building test image ${image} failed: ${failed.error}\n${log}`);
  }
}

/** Builds the test images on a daemon (skipping those it already has): a shared base, then the variants on top. */
export async function buildTestImages(docker: Dockerode): Promise<void> {
  if (!(await exists(docker, IMAGES.base))) {
    const busybox = await readFile(BUSYBOX).catch((err: unknown) => {
      throw new Error(`${BUSYBOX} is missing: run scripts/setup.sh (as root) to install busybox-static.`, { cause: err });
    });
    await buildImage(docker, IMAGES.base, { Dockerfile: BASE_DOCKERFILE, busybox }).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n(${BUSYBOX} must be the statically linked one from busybox-static: run scripts/setup.sh.)`, { cause: err });
    });
  }
  await Promise.all(
    WEB_VARIANTS.map(async ({ image, body, healthCmd }) => {
      if (!(await exists(docker, image))) await buildImage(docker, image, { Dockerfile: webDockerfile(healthCmd), 'index.html': body });
    }),
  );
}
