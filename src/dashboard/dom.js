// Building the page from data without ever parsing data as HTML: every string from the API ends
// up as a text node or an attribute value, never in innerHTML.
/* global document, Node, setInterval, URLSearchParams */

/**
 * Creates an element: h('a', { href: '#/', class: 'x', onclick: fn }, 'text', child, [more]).
 * Strings become text nodes; null, undefined and false are left out.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, children);
  return el;
}

/** Appends children (nodes, strings, arrays of them) as h() does. */
export function add(el, children) {
  for (const c of [children].flat(Infinity)) {
    if (c === null || c === undefined || c === false || c === '') continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/**
 * Replaces el's children with these, left out and flattened as h() does. The DOM's own
 * replaceChildren() and append() turn null and undefined into the text "null" and "undefined":
 * the dashboard goes through add() and replace() instead, so an absent part is just absent.
 */
export function replace(el, ...children) {
  el.replaceChildren();
  return add(el, children);
}

/** A hash link: the path's parts and the query's values are encoded, so data never escapes them. */
export function link(path, params, ...children) {
  return h('a', { href: href(path, params) }, ...children);
}

/** `#/path?k=v` with empty values left out. */
export function href(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const query = q.toString();
  return `#${path}${query ? `?${query}` : ''}`;
}

const TONES = {
  good: ['synced', 'healthy', 'succeeded', 'ok', 'accepted', 'up', 'create', 'delivered', 'leader'],
  warn: ['outofsync', 'progressing', 'running', 'paused', 'rolledback', 'unreachable', 'ignored', 'starting', 'replace', 'held', 'coalesced', 'pending'],
  bad: ['degraded', 'failed', 'error', 'rejected', 'lost', 'invalid', 'missing', 'unhealthy', 'exited', 'dead', 'remove', 'dropped'],
};

/** The colour family of a status word (Synced, Degraded, failed, up ...). */
export function tone(value) {
  const v = String(value ?? '').toLowerCase();
  for (const [t, words] of Object.entries(TONES)) if (words.includes(v)) return t;
  return 'neutral';
}

/** A coloured status word; the word itself is always shown (colour is never the only signal). */
export function badge(value, { title, tone: t } = {}) {
  if (value === undefined || value === null || value === '') return null;
  return h('span', { class: `badge tone-${t ?? tone(value)}`, title }, String(value));
}

/** The first 7 characters of a SHA or container id, full value on hover. */
export function short(id, n = 7) {
  if (!id) return h('span', { class: 'muted' }, '—');
  return h('code', { title: id }, id.slice(0, n));
}

/** "1 replica", "2 replicas". */
export const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The first line of a message. */
export const firstLine = (s) => String(s ?? '').split('\n')[0];

const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
const UNITS = [
  ['year', 31536000],
  ['month', 2592000],
  ['day', 86400],
  ['hour', 3600],
  ['minute', 60],
  ['second', 1],
];

/** "3 minutes ago" for an ISO time. */
export function ago(iso) {
  const s = (new Date(iso).getTime() - Date.now()) / 1000;
  for (const [unit, size] of UNITS) {
    if (Math.abs(s) >= size || unit === 'second') return rtf.format(Math.round(s / size), unit);
  }
  return iso;
}

/** A <time> showing how long ago, with the exact time on hover (keepTimesCurrent() updates it). */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: new Date(iso).toLocaleString(), class: 'ago' }, ago(iso));
}

/** Updates every time() on the page every 30 s. */
export function keepTimesCurrent() {
  setInterval(() => {
    for (const t of document.querySelectorAll('time.ago')) t.textContent = ago(t.getAttribute('datetime'));
  }, 30_000);
}

/** "1.2 s", "3 min 4 s" between two ISO times. */
export function duration(from, to) {
  if (!from || !to) return '';
  const ms = new Date(to).getTime() - new Date(from).getTime();
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/**
 * A table that turns into labelled cards on a narrow screen. columns: [{ label, cell(item), class? }];
 * key(item) names each row (data-key) so that a live update can replace it in place.
 */
export function table(columns, items, { key, empty = 'Nothing yet.', rowClass } = {}) {
  const body = h('tbody');
  const t = h(
    'table',
    { class: 'data' },
    h(
      'thead',
      null,
      h(
        'tr',
        null,
        columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)),
      ),
    ),
    body,
  );
  const row = (item) =>
    h(
      'tr',
      { dataset: key ? { key: String(key(item)) } : undefined, class: rowClass?.(item) },
      columns.map((c) => h('td', { 'data-label': c.label, class: c.class }, c.cell(item))),
    );
  const fill = (list) => {
    replace(body, list.length ? list.map(row) : h('tr', { class: 'empty' }, h('td', { colspan: columns.length }, empty)));
  };
  fill(items);
  return Object.assign(h('div', { class: 'table-wrap' }, t), { row, fill, body });
}

/** A page section with a heading. */
export function section(title, ...children) {
  return h('section', { class: 'panel' }, title ? h('h2', null, title) : null, ...children);
}

/** A message box; kind: error | info | ok. */
export function notice(kind, ...children) {
  return h('div', { class: `notice notice-${kind}`, role: kind === 'error' ? 'alert' : 'status' }, ...children);
}
