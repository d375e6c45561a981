/**
 * What each kind of target is sent for an event: the webhook's versioned JSON body (signed with the
 * target's secret, as berth's own generic webhook checks), a Slack, Discord or Teams message, a
 * forge's commit status. Pure builders of plain data; docs/notifications.md documents each payload.
 */
import { berthSignature } from '../server/forges.ts';
import type { ForgeTarget, MessageTarget, MessageType } from './config.ts';
import { COMMIT_EVENTS, type NotificationEvent } from './events.ts';
import type { CommitStatus, ForgeClient } from './forges.ts';
import type { HttpRequest } from './http.ts';

/** A target with what the engine read for it at start: the URL (a secret for chat services), the signing secret, the forge's client. */
export type ResolvedTarget = { config: MessageTarget; url: string; secret?: string } | { config: ForgeTarget; client: ForgeClient };

/** One delivery of an event: its id (the same on every attempt) and how many events it stands for (drift coalesced in a full queue). */
export interface DeliveryContext {
  id: number;
  count: number;
  /** the engine config's publicUrl: links to the dashboard */
  publicUrl?: string;
}

/** The request that tells `target` of `ev`; undefined when there is nothing to tell it (a status needs a commit). */
export function requestFor(target: ResolvedTarget, ev: NotificationEvent, d: DeliveryContext): HttpRequest | undefined {
  if ('client' in target) {
    const status = commitStatus(ev, d.publicUrl);
    return status && target.client.statusRequest(status);
  }
  const body = MESSAGES[target.config.type](ev, d);
  const text = JSON.stringify(body);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': 'berth' };
  if (target.config.type === 'webhook') {
    headers['x-berth-event'] = ev.event;
    headers['x-berth-delivery'] = String(d.id);
    if (target.secret !== undefined) headers['x-berth-signature'] = berthSignature(target.secret, text);
  }
  return { method: 'POST', url: target.url, headers, body: text };
}

/** The webhook's body, version 1 (docs/notifications.md, "Webhook"): fields that do not apply are left out. */
export interface WebhookBody {
  version: 1;
  /** the delivery's id: the same on a retry (also sent as X-Berth-Delivery) */
  id: number;
  event: NotificationEvent['event'];
  outcome: NotificationEvent['outcome'];
  repo?: string;
  stack?: string;
  service?: string;
  host?: string;
  commit?: { sha: string; author?: string; message?: string };
  reason?: string;
  /** what the failing container showed (docs/notifications.md, "Evidence") */
  evidence?: NotificationEvent['evidence'];
  syncId?: number;
  time: string;
  /** how many events of this kind this one stands for, when more than one (a full queue coalesces drift) */
  count?: number;
  /** the dashboard's page of it, when publicUrl is set */
  url?: string;
}

export function webhookBody(ev: NotificationEvent, d: DeliveryContext): WebhookBody {
  const url = dashboardUrl(ev, d.publicUrl);
  return {
    version: 1,
    id: d.id,
    event: ev.event,
    outcome: ev.outcome,
    ...(ev.repo !== undefined ? { repo: ev.repo } : {}),
    ...(ev.stack !== undefined ? { stack: ev.stack } : {}),
    ...(ev.service !== undefined ? { service: ev.service } : {}),
    ...(ev.host !== undefined ? { host: ev.host } : {}),
    ...(ev.commit ? { commit: ev.commit } : {}),
    ...(ev.reason !== undefined ? { reason: ev.reason } : {}),
    ...(ev.evidence !== undefined ? { evidence: ev.evidence } : {}),
    ...(ev.syncId !== undefined ? { syncId: ev.syncId } : {}),
    time: ev.time,
    ...(d.count > 1 ? { count: d.count } : {}),
    ...(url ? { url } : {}),
  };
}

/**
 * The dashboard's page of an event (src/dashboard/app.js routes): the sync's, else the stack's,
 * else the host's; none without publicUrl.
 */
export function dashboardUrl(ev: Pick<NotificationEvent, 'syncId' | 'stack' | 'host'>, publicUrl: string | undefined): string | undefined {
  if (publicUrl === undefined) return undefined;
  if (ev.syncId !== undefined) return `${publicUrl}/#/syncs/${ev.syncId}`;
  if (ev.stack !== undefined) return `${publicUrl}/#/stacks/${encodeURIComponent(ev.stack)}`;
  if (ev.host !== undefined) return `${publicUrl}/#/hosts/${encodeURIComponent(ev.host)}`;
  return undefined;
}

const short = (sha: string) => sha.slice(0, 7);
const firstLine = (text: string) => text.split('\n')[0]!.trim();
/** At most `n` characters, cut with an ellipsis. */
export const clip = (text: string, n: number) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

/** What happened, in one short line: `web: the rollout of 1a2b3c4 failed and was rolled back`. */
export function headline(ev: NotificationEvent, count = 1): string {
  const sha = ev.commit ? short(ev.commit.sha) : undefined;
  const subject = ev.stack ?? (ev.repo ? `repo ${ev.repo}` : 'berth');
  const on = ev.host ? ` on ${ev.host}` : '';
  const times = count > 1 ? ` (${count} times)` : '';
  switch (ev.event) {
    case 'sync.started':
      return `${subject}: applying ${sha ?? 'the branch head'}`;
    case 'sync.succeeded':
      return `${subject}: ${sha ?? 'the branch head'} applied`;
    case 'sync.failed':
      return ev.outcome === 'error' ? `${subject}: the sync of ${sha ?? 'a commit'} was interrupted` : `${subject}: the sync of ${sha ?? 'a commit'} failed`;
    case 'rollout.paused':
      return `${subject}: the rollout of ${sha ?? 'a commit'} failed and is paused`;
    case 'rollout.rolledback':
      return `${subject}: the rollout of ${sha ?? 'a commit'} failed and was rolled back`;
    case 'drift.detected':
      return `${subject}: a change made by hand was found${on}${times}`;
    case 'drift.corrected':
      return `${subject}: a change made by hand was put back${on}${times}`;
    case 'host.lost':
      return `host ${ev.host ?? '?'} is lost: its replicas move to the other hosts`;
    case 'host.up':
      return `host ${ev.host ?? '?'} answers again`;
    case 'hook.failed':
      return `${subject}: the hook ${ev.service ?? ''} failed${on}`;
    case 'job.failed':
      return `${subject}: the job ${ev.service ?? ''} failed${on}`;
  }
}

/** The commit in one line: `1a2b3c4 "Fix the login" by Ada`. */
export function commitLine(commit: NonNullable<NotificationEvent['commit']>): string {
  const message = commit.message ? ` "${clip(firstLine(commit.message), 100)}"` : '';
  return `${short(commit.sha)}${message}${commit.author ? ` by ${commit.author}` : ''}`;
}

/** The reason as a chat message shows it: at most 1,500 characters (a rollout's names the replica that failed and its telling line). */
const reasonText = (ev: NotificationEvent) => (ev.reason === undefined ? undefined : clip(ev.reason.trim(), 1500));

/**
 * The one line that says why, after the headline: the failing container's summary (its first
 * telling line: `web.1@h1 exited 137 (OOM-killed)`) when there is evidence, else the reason's first line.
 */
export const whyLine = (ev: NotificationEvent): string | undefined =>
  ev.evidence?.summary ?? (ev.reason === undefined ? undefined : firstLine(ev.reason) || undefined);

const failed = (ev: NotificationEvent) => ev.outcome === 'failure' || ev.outcome === 'error';

/** Slack's markup characters, escaped as Slack asks (&, <, >). */
const slackEscape = (text: string) => text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');

/** A Slack incoming webhook's message: `text` (the notification's line) and blocks. */
export function slackMessage(ev: NotificationEvent, d: DeliveryContext) {
  const title = headline(ev, d.count);
  const reason = reasonText(ev);
  const why = whyLine(ev);
  const url = dashboardUrl(ev, d.publicUrl);
  const context = [ev.repo ? `repo ${ev.repo}` : undefined, ev.commit ? commitLine(ev.commit) : undefined].filter((x) => x !== undefined);
  return {
    text: slackEscape(`${title}${why ? `: ${why}` : ''}`),
    blocks: [
      { type: 'section', text: { type: 'mrkdwn', text: `*${slackEscape(title)}*${reason ? `\n${slackEscape(reason)}` : ''}` } },
      ...(context.length ? [{ type: 'context', elements: [{ type: 'mrkdwn', text: slackEscape(context.join(' · ')) }] }] : []),
      ...(url ? [{ type: 'actions', elements: [{ type: 'button', text: { type: 'plain_text', text: 'Open in berth' }, url }] }] : []),
    ],
  };
}

/** Discord's colours for an embed: red for a failure, green for a success, amber while a sync runs. */
const COLOURS = { failure: 0xd93f3f, error: 0xd93f3f, success: 0x2e9e5b, pending: 0xd99a1e } as const;

/** A Discord webhook's message: one embed; mentions (@everyone in a commit message) are not acted on. */
export function discordMessage(ev: NotificationEvent, d: DeliveryContext) {
  const reason = reasonText(ev);
  const url = dashboardUrl(ev, d.publicUrl);
  const fields = [
    ev.commit ? { name: 'Commit', value: clip(commitLine(ev.commit), 1024) } : undefined,
    ev.repo ? { name: 'Repo', value: ev.repo, inline: true } : undefined,
    ev.host ? { name: 'Host', value: ev.host, inline: true } : undefined,
  ].filter((x) => x !== undefined);
  return {
    embeds: [
      {
        title: clip(headline(ev, d.count), 256),
        ...(reason ? { description: reason } : {}),
        ...(url ? { url } : {}),
        color: COLOURS[ev.outcome],
        ...(fields.length ? { fields } : {}),
        timestamp: ev.time,
      },
    ],
    allowed_mentions: { parse: [] },
  };
}

/** A Teams message for a Workflows (Power Automate) webhook: one Adaptive Card. */
export function teamsMessage(ev: NotificationEvent, d: DeliveryContext) {
  const reason = reasonText(ev);
  const url = dashboardUrl(ev, d.publicUrl);
  const facts = [
    ev.repo ? { title: 'Repo', value: ev.repo } : undefined,
    ev.stack ? { title: 'Stack', value: ev.stack } : undefined,
    ev.host ? { title: 'Host', value: ev.host } : undefined,
    ev.commit ? { title: 'Commit', value: commitLine(ev.commit) } : undefined,
  ].filter((x) => x !== undefined);
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.4',
          body: [
            {
              type: 'TextBlock',
              text: headline(ev, d.count),
              weight: 'Bolder',
              size: 'Medium',
              wrap: true,
              color: failed(ev) ? 'Attention' : ev.outcome === 'success' ? 'Good' : 'Default',
            },
            ...(reason ? [{ type: 'TextBlock', text: reason, wrap: true }] : []),
            ...(facts.length ? [{ type: 'FactSet', facts }] : []),
          ],
          ...(url ? { actions: [{ type: 'Action.OpenUrl', title: 'Open in berth', url }] } : {}),
        },
      },
    ],
  };
}

const MESSAGES: Record<MessageType, (ev: NotificationEvent, d: DeliveryContext) => unknown> = {
  webhook: webhookBody,
  slack: slackMessage,
  discord: discordMessage,
  teams: teamsMessage,
};

/**
 * The commit status an event sets: `pending` while berth applies the commit to the stack, then
 * `success` or `failure` (a rollout paused or rolled back is a failure), `error` for a sync berth
 * was stopped in the middle of. Context `berth/<stack>`; undefined for an event about no commit.
 */
export function commitStatus(ev: NotificationEvent, publicUrl: string | undefined): CommitStatus | undefined {
  if (!COMMIT_EVENTS.includes(ev.event) || !ev.commit) return undefined;
  const targetUrl = dashboardUrl(ev, publicUrl);
  const where = ev.stack ?? 'the stacks';
  const line = whyLine(ev);
  const why = line ? `: ${line}` : '';
  const descriptions: Partial<Record<NotificationEvent['event'], string>> = {
    'sync.started': `berth is applying this commit to ${where}`,
    'sync.succeeded': `Applied to ${where}`,
    'sync.failed': ev.outcome === 'error' ? `Interrupted${why}` : `Failed${why}`,
    'rollout.paused': `Rollout paused${why}`,
    'rollout.rolledback': `Rolled back${why}`,
  };
  const description = descriptions[ev.event];
  return {
    sha: ev.commit.sha,
    state: ev.outcome,
    context: ev.stack ? `berth/${ev.stack}` : 'berth',
    description: clip(description ?? '', 140),
    ...(targetUrl ? { targetUrl } : {}),
  };
}
