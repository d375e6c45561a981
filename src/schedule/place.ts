/**
 * Placement: which replica of which service runs on which host. Pure.
 * For now: replicated services spread round-robin over the stack's eligible hosts, in host order.
 */
import type { HostSelector, RenderedStack } from '../model.ts';
import { desiredContainer, type DesiredContainer } from './container.ts';

export interface HostInfo {
  name: string;
  labels: Record<string, string>;
}

/** The hosts a stack's `hosts:` selector picks, in config order. */
export function eligibleHosts(selector: HostSelector, hosts: HostInfo[]): HostInfo[] {
  switch (selector.kind) {
    case 'all':
      return hosts;
    case 'names':
      return hosts.filter((h) => selector.names.includes(h.name));
    case 'labels':
      return hosts.filter((h) => Object.entries(selector.labels).every(([k, v]) => h.labels[k] === v));
  }
}

export class PlacementError extends Error {}

/** Every container the stack should have, each on its host. */
export function placeStack(repo: string, stack: RenderedStack, hosts: HostInfo[], commitSha: string): DesiredContainer[] {
  const eligible = eligibleHosts(stack.hosts, hosts);
  if (eligible.length === 0) {
    throw new PlacementError(`stack ${stack.name}: no registered host matches its hosts selector ${JSON.stringify(stack.hosts)}`);
  }
  const out: DesiredContainer[] = [];
  for (const svc of stack.services) {
    for (let slot = 1; slot <= svc.replicas; slot++) {
      const host = eligible[(slot - 1) % eligible.length];
      out.push(desiredContainer(repo, stack, svc, slot, host.name, commitSha));
    }
  }
  return out;
}
