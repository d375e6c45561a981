/**
 * Connections to the registered Docker hosts: one dockerode client per host, from its endpoint.
 */
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import './lazy-deps.ts'; // before dockerode
import Dockerode from 'dockerode';
import { ConfigError, type HostConfig } from '../config.ts';
import { DialStdioAgent } from './ssh.ts';

/**
 * A dockerode client for `unix://`, `tcp://` (TLS when the host has `tls`), `http(s)://` and
 * `ssh://user@host[:port]` endpoints (logged in with `ssh.keyFile`, the host key checked against
 * `ssh.knownHostsFile`; the user defaults to berth's own, the port to 22).
 */
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
    case 'ssh:': {
      if (!host.ssh) throw new ConfigError(`host ${host.name}: an ssh:// endpoint needs ssh: { keyFile }`);
      const hostname = url.hostname.replace(/^\[(.*)\]$/, '$1'); // an IPv6 address comes in brackets
      const port = Number(url.port || 22);
      const agent = new DialStdioAgent(host.name, host.ssh, { hostname, port, username: decodeURIComponent(url.username) || userInfo().username });
      // plain HTTP over the agent's SSH channels (dockerode passes `agent` on; its type declarations do not say so)
      return new Dockerode({ protocol: 'http', host: hostname, port, agent } as Dockerode.DockerOptions);
    }
    default:
      throw new ConfigError(`host ${host.name}: unsupported endpoint ${host.endpoint}`);
  }
}
