/**
 * Connections to the registered Docker hosts: one dockerode client per host, from its endpoint.
 */
import { readFileSync } from 'node:fs';
import Dockerode from 'dockerode';
import { ConfigError, type HostConfig } from '../config.ts';

/** A dockerode client for `unix://`, `tcp://` (TLS when the host has `tls`), `http(s)://` and `ssh://` endpoints. */
export function connect(host: HostConfig): Dockerode {
  const url = new URL(host.endpoint);
  switch (url.protocol) {
    case 'unix:':
      return new Dockerode({ socketPath: url.pathname });
    case 'tcp:':
    case 'http:':
    case 'https:': {
      const tls = host.tls;
      const read = (f: string) => {
        try {
          return readFileSync(f);
        } catch {
          throw new ConfigError(`host ${host.name}: cannot read TLS file ${f}`);
        }
      };
      return new Dockerode({
        host: url.hostname,
        port: url.port || (tls || url.protocol === 'https:' ? 2376 : 2375),
        protocol: tls || url.protocol === 'https:' ? 'https' : 'http',
        ...(tls ? { ca: read(tls.ca), cert: read(tls.cert), key: read(tls.key) } : {}),
      });
    }
    case 'ssh:':
      return new Dockerode({
        protocol: 'ssh',
        host: url.hostname,
        port: url.port || 22,
        username: url.username || undefined,
      } as Dockerode.DockerOptions);
    default:
      throw new ConfigError(`host ${host.name}: unsupported endpoint ${host.endpoint}`);
  }
}
