/**
 * The images a simulated host has from the start ("preloaded"): the test images of
 * test/harness/images.ts, with the config their Dockerfiles give them (the conformance test,
 * test/simulator.test.ts, checks it against the images the real test daemon built). Like images
 * built on the host, they carry no registry digest: berth pins nothing for them.
 */
import { IMAGES } from '../../test/harness/images.ts';

/** The part of an image's config that shapes its containers. */
export interface ImageConfig {
  Env?: string[];
  Cmd?: string[] | null;
  Entrypoint?: string[] | null;
  Healthcheck?: { Test: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number };
  ExposedPorts?: Record<string, object>;
  Labels?: Record<string, string>;
  WorkingDir?: string;
  User?: string;
  Volumes?: Record<string, object> | null;
  StopSignal?: string;
}

export interface SimImageSpec {
  ref: string;
  config: ImageConfig;
  /** pulled from a registry: it has a registry digest (RepoDigests) */
  pulled?: boolean;
  created?: number;
  size?: number;
}

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const SECOND_NS = 1_000_000_000;

const web = (healthCmd: string): ImageConfig => ({
  Env: [PATH],
  Cmd: ['sh', '-c', "trap 'exit 0' TERM; httpd -f -p 80 -h /www & wait"],
  ExposedPorts: { '80/tcp': {} },
  Healthcheck: { Test: ['CMD-SHELL', healthCmd], Interval: SECOND_NS, Timeout: SECOND_NS, Retries: 3 },
});

/** The test images, as the test daemons build them. */
export const CATALOGUE: SimImageSpec[] = [
  { ref: IMAGES.base, config: { Env: [PATH], Cmd: null } },
  { ref: IMAGES.webV1, config: web('wget -q -O- http://127.0.0.1/ || exit 1') },
  { ref: IMAGES.webV2, config: web('wget -q -O- http://127.0.0.1/ || exit 1') },
  { ref: IMAGES.webUnhealthy, config: web('exit 1') },
];
