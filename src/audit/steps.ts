/**
 * Turns what the executor reports into audit rows, and a plan into the summary kept with its sync.
 */
import type { StepEvent } from '../apply/execute.ts';
import type { StackPlan } from '../diff/plan.ts';
import type { AuditInput } from './log.ts';

/** The audit fields of one apply step. */
export function stepRow(e: StepEvent): AuditInput {
  switch (e.kind) {
    case 'network.created':
    case 'volume.created':
    case 'network.removed':
      return { kind: e.kind, host: e.host, message: e.name };
    case 'image.built':
      return { kind: e.kind, service: e.service, host: e.host, message: builtMessage(e) };
    case 'rollout.batch':
      return {
        kind: e.rollback ? 'rollback.batch' : 'rollout.batch',
        service: e.service,
        outcome: 'info',
        message: `batch ${e.batch} of ${e.of}: ${e.replicas.join(', ')}`,
      };
    case 'rollout.failed':
    case 'rollout.paused':
    case 'rollback.failed':
      return { kind: e.kind, service: e.service, outcome: 'error', message: e.reason };
    case 'rollback.started':
    case 'rollback.succeeded':
      return { kind: e.kind, service: e.service, message: e.reason };
    default:
      return {
        kind: e.kind,
        service: e.service,
        host: e.host,
        containerBefore: 'containerBefore' in e ? e.containerBefore : undefined,
        containerAfter: e.containerAfter,
        outcome: e.kind === 'container.unhealthy' || e.kind === 'job.failed' || (e.kind === 'container.restored' && e.failed) ? 'error' : 'ok',
        message: `${e.service}#${e.slot}: ${e.reason}`,
        ...('evidence' in e && e.evidence ? { evidence: e.evidence } : {}),
      };
  }
}

/** What a build was given besides its context: its args (already masked), extra_hosts, network, target. */
function builtMessage(e: Extract<StepEvent, { kind: 'image.built' }>): string {
  const args = Object.entries(e.args).map(([k, v]) => `${k}=${v}`);
  const parts = [
    args.length ? `args ${args.join(', ')}` : '',
    e.extraHosts.length ? `extra_hosts ${e.extraHosts.join(', ')}` : '',
    e.network === undefined ? '' : `network ${e.network}`,
    e.target === undefined ? '' : `target ${e.target}`,
  ].filter(Boolean);
  return `built ${e.ref}${parts.length ? `: ${parts.join('; ')}` : ''}`;
}

export function summarizePlan(plan: StackPlan) {
  return {
    networks: plan.networks.map((n) => ({ host: n.host, name: n.spec.name })),
    volumes: plan.volumes.map((v) => ({ host: v.host, name: v.spec.name })),
    removeNetworks: plan.removeNetworks,
    ...(plan.recreateNetworks ? { recreateNetworks: plan.recreateNetworks.map((n) => ({ host: n.host, name: n.spec.name })) } : {}),
    actions: plan.actions.map((a) => ({
      kind: a.kind,
      host: a.host,
      service: a.service,
      slot: a.slot,
      reason: a.kind === 'keep' ? undefined : a.reason,
      container: a.kind === 'create' ? undefined : a.live.id,
      specHash: a.kind === 'create' || a.kind === 'replace' ? a.desired.specHash : a.live.specHash,
    })),
    hooks: plan.hooks.map((h) => ({ phase: h.phase, host: h.desired.host, service: h.service, specHash: h.desired.specHash })),
  };
}
