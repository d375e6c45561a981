// A sync's failure and progress on its page: the evidence a failing container left (folded under
// its step), and each service's replicas updated out of those the rollout changes.
import { h, plural } from './dom.js';

/** How a failing container ended, in a few words: `exit code 137, OOM-killed`. */
function ending(e) {
  return [e.exitCode === undefined ? '' : `exit code ${e.exitCode}`, e.oomKilled ? 'OOM-killed (its memory limit)' : ''].filter(Boolean).join(', ');
}

/**
 * The evidence of a failed step (docs/api.md, "Evidence"), folded: its summary line, and open the
 * container, how it ended, the health check's last results and its last lines of output.
 */
export function evidenceBlock(e, { open = false } = {}) {
  const facts = [
    h('dt', null, 'Container'),
    h('dd', null, h('code', null, e.container), e.id ? h('span', { class: 'muted small' }, ` ${e.id}`) : null, ` on ${e.host}`),
  ];
  const how = ending(e);
  if (how) facts.push(h('dt', null, 'Ended'), h('dd', null, how));
  if (e.error) facts.push(h('dt', null, 'Daemon'), h('dd', null, h('pre', { class: 'evidence-text' }, e.error)));
  return h(
    'details',
    { class: 'evidence', open },
    h('summary', null, h('strong', null, 'Evidence: '), e.summary),
    h('dl', { class: 'evidence-facts' }, facts),
    e.health.length
      ? h(
          'div',
          null,
          h('h4', null, `Health check, last ${plural(e.health.length, 'result')}`),
          h(
            'ol',
            { class: 'evidence-health' },
            e.health.map((r) =>
              h(
                'li',
                null,
                h('span', { class: r.exitCode === 0 ? 'muted' : 'bad' }, `exit ${r.exitCode}`),
                r.output ? h('pre', { class: 'evidence-text' }, r.output) : null,
              ),
            ),
          ),
        )
      : null,
    e.logs.length
      ? h('div', null, h('h4', null, `Last ${plural(e.logs.length, 'line')} of output`), h('pre', { class: 'evidence-text evidence-logs' }, e.logs.join('\n')))
      : h('p', { class: 'muted small' }, 'No output.'),
    e.truncated ? h('p', { class: 'muted small' }, 'Cut to fit: the oldest lines were left out.') : null,
  );
}

/** Each service's rollout: `web 3/4 updated`, with how many failed, as a row of meters. */
export function progressList(services) {
  return h(
    'ul',
    { class: 'progress' },
    services.map((p) =>
      h(
        'li',
        { class: `progress-service${p.failed ? ' failing' : ''}`, dataset: { service: p.service } },
        h('span', { class: 'progress-name' }, p.service),
        h('meter', { min: 0, max: p.total || 1, value: p.updated, title: `${p.updated} of ${p.total} updated` }),
        h('span', { class: 'progress-count' }, `${p.updated}/${p.total} updated`),
        p.failed ? h('span', { class: 'bad' }, ` ${p.failed} failed`) : null,
        p.rollingBack ? h('span', { class: 'muted' }, ' rolling back') : null,
      ),
    ),
  );
}
