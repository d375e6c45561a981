/**
 * Hand-made changes: what a live container actually is (from `docker inspect`) against what berth
 * would create. Catches a container recreated by hand with another image, environment, port or
 * mount while keeping berth's labels (and so its spec hash). Pure.
 */
import type Dockerode from 'dockerode';
import { parse, stringify } from 'yaml';
import { maskEnv, type DesiredContainer } from '../schedule/container.ts';

export interface HandChanges {
  /** one line per difference, secret-looking values masked */
  changes: string[];
  /** the desired view with the live values put in: the live side of a readable diff */
  view: string;
}

const envMap = (env: string[] | undefined) =>
  Object.fromEntries((env ?? []).map((e) => [e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')), e.includes('=') ? e.slice(e.indexOf('=') + 1) : '']));

type Bindings = Record<string, Array<{ HostIp?: string; HostPort?: string }> | null> | undefined;

function portList(b: Bindings): string[] {
  return (
    Object.entries(b ?? {})
      // as Compose's short syntax writes them: `127.0.0.1:8080:80`, `8080:80`, `80`, `53/udp`
      .flatMap(([port, list]) =>
        (list ?? []).map(
          (x) => `${x.HostIp && x.HostIp !== '0.0.0.0' ? `${x.HostIp}:` : ''}${x.HostPort ? `${x.HostPort}:` : ''}${port.replace(/\/tcp$/, '')}`,
        ),
      )
      .sort()
  );
}

/**
 * The differences between a live container and the desired one. `imageEnv` is the environment its
 * image sets (not a change by hand when it shows up in the container).
 */
export function handChanges(info: Dockerode.ContainerInspectInfo, desired: DesiredContainer, imageEnv: string[] = []): HandChanges {
  const changes: string[] = [];
  // the live values for the view, parsed and written only when something differs (a full resync checks every container)
  const live: Record<string, unknown> = {};
  const mask = (k: string, v: string) => maskEnv({ [k]: v })[k];

  const image = info.Config.Image;
  if (image !== desired.create.Image) {
    changes.push(`image: ${image} (wants ${desired.create.Image})`);
    live.image = image;
  }

  const want = envMap(desired.create.Env);
  const have = envMap(info.Config.Env);
  const fromImage = envMap(imageEnv);
  const envLines: string[] = [];
  for (const k of new Set([...Object.keys(want), ...Object.keys(have)])) {
    if (want[k] === have[k]) continue;
    if (!(k in want) && fromImage[k] === have[k]) continue;
    if (!(k in have)) envLines.push(`environment ${k}: missing (wants ${mask(k, want[k])})`);
    else if (!(k in want)) envLines.push(`environment ${k}: ${mask(k, have[k])} (not in Git)`);
    else envLines.push(`environment ${k}: ${mask(k, have[k])} (wants ${mask(k, want[k])})`);
  }
  if (envLines.length) {
    changes.push(...envLines);
    const shown = Object.fromEntries(Object.entries(have).filter(([k, v]) => k in want || fromImage[k] !== v));
    live.environment = Object.keys(shown).length ? maskEnv(shown) : undefined;
  }

  const wantPorts = portList(desired.create.HostConfig?.PortBindings as Bindings);
  const havePorts = portList(info.HostConfig.PortBindings as Bindings);
  if (wantPorts.join() !== havePorts.join()) {
    changes.push(`ports: ${havePorts.join(', ') || 'none'} (wants ${wantPorts.join(', ') || 'none'})`);
    live.ports = havePorts.length ? havePorts : undefined;
  }

  const wantMounts = (desired.create.HostConfig?.Mounts ?? [])
    .map((m) => `${m.Type}:${m.Source || '(anonymous)'}:${m.Target}${m.ReadOnly ? ':ro' : ''}`)
    .sort();
  const haveMounts = (info.Mounts ?? [])
    .map((m) => {
      const anonymous = m.Type === 'volume' && !wantMounts.some((w) => w.startsWith(`volume:${m.Name}:`));
      const source = m.Type === 'volume' ? (anonymous && wantMounts.includes(`volume:(anonymous):${m.Destination}`) ? '(anonymous)' : m.Name) : m.Source;
      return `${m.Type}:${source}:${m.Destination}${m.RW ? '' : ':ro'}`;
    })
    .sort();
  if (wantMounts.join() !== haveMounts.join()) {
    changes.push(`mounts: ${haveMounts.join(', ') || 'none'} (wants ${wantMounts.join(', ') || 'none'})`);
    live.volumes = haveMounts.length ? haveMounts.map((m) => m.replace(/^(volume|bind):/, '')) : undefined; // the view's short syntax
  }

  if (changes.length === 0) return { changes, view: desired.view };
  const view = { ...(parse(desired.view) as Record<string, unknown>), ...live };
  return { changes, view: stringify(JSON.parse(JSON.stringify(view))) };
}
