// The berth dashboard: a hash router over a few views of the API, kept current by its event
// stream. Vanilla JS, no build step; every string from the API goes through dom.js's h().
/* global document, location, window, confirm, setTimeout, clearTimeout, console, FormData, URLSearchParams, CSS, AbortController, requestAnimationFrame */
import { api, listen, streamLines, token } from './api.js';
import { add, badge, duration, firstLine, h, href, keepTimesCurrent, link, notice, plural, replace, section, short, table, time } from './dom.js';
import { diffView } from './diff.js';
import { evidenceBlock, progressList } from './evidence.js';
// served by berth from src/audit/kinds.ts, not a file here: the audit page's kind filter offers what berth writes
import { KINDS } from './kinds.js';

const main = document.getElementById('main');
const who = document.getElementById('who');
const live = document.getElementById('live');
const changeToken = document.getElementById('change-token');

/** The token's name and role (GET /api/v1/me); null until signed in. */
let me = null;
const canAct = () => me?.role === 'operator' || me?.role === 'admin';
/** The view on screen: it gets the live events. */
let current = null;
let renders = 0;
let stopEvents = null;

const enc = encodeURIComponent;

// ---------------------------------------------------------------- router

const ROUTES = [
  [/^\/$/, overviewView],
  [/^\/stacks\/([^/]+)$/, stackView],
  [/^\/syncs$/, syncsView],
  [/^\/syncs\/(\d+)$/, syncView],
  [/^\/audit$/, auditView],
  [/^\/deliveries$/, deliveriesView],
  [/^\/notifications$/, notificationsView],
  [/^\/drift$/, driftView],
  [/^\/hosts$/, hostsView],
  [/^\/hosts\/([^/]+)$/, hostView],
];

/** The hash as a path and its query: `#/audit?commit=abc` -> { path: '/audit', q: { commit: 'abc' } }. */
function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const i = raw.indexOf('?');
  return { path: (i < 0 ? raw : raw.slice(0, i)) || '/', q: Object.fromEntries(new URLSearchParams(i < 0 ? '' : raw.slice(i + 1))) };
}

/** Draws the view the hash names. A slower earlier render never overwrites a later one. */
async function render() {
  const mine = ++renders;
  const { path, q } = parseHash();
  for (const a of document.querySelectorAll('[data-nav]')) {
    const nav = a.getAttribute('data-nav');
    a.toggleAttribute('aria-current', nav === '/' ? path === '/' || path.startsWith('/stacks/') : path.startsWith(nav));
  }
  const route = ROUTES.find(([re]) => re.test(path));
  main.setAttribute('aria-busy', 'true');
  if (!main.firstElementChild) replace(main, h('p', { class: 'muted' }, 'Loading…'));
  let view;
  try {
    if (!route) throw Object.assign(new Error(`There is no page ${path}.`), { status: 404 });
    const args = route[0]
      .exec(path)
      .slice(1)
      .map((a) => decodeURIComponent(a));
    view = await route[1](q, ...args);
  } catch (err) {
    if (mine !== renders) return;
    if (err.status === 401) return askToken('berth refused the saved token (401): paste a valid one.');
    view = { title: 'Error', node: h('div', null, notice('error', err.message), h('p', null, link('/', {}, '← Overview'))) };
  }
  if (mine !== renders) return view.dispose?.();
  // a view that streams (a stack's logs) stops when another takes its place
  current?.dispose?.();
  current = view;
  main.removeAttribute('aria-busy');
  replace(main, view.node);
  document.title = `${view.title} · berth`;
}

function onEvent(type, data) {
  try {
    current?.onEvent?.(type, data);
  } catch (err) {
    console.error('live update failed', err);
  }
}

function onLive(state, reopened) {
  live.textContent = state;
  live.className = `live live-${state}`;
  if (reopened) void render(); // events may have been missed while the stream was down
}

// ---------------------------------------------------------------- signing in

/** Asks for the API token (kept in localStorage); message says why. */
function askToken(message) {
  stopEvents?.();
  stopEvents = null;
  current?.dispose?.();
  current = null;
  me = null;
  who.textContent = '';
  changeToken.hidden = true;
  onLive('offline', false);
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', spellcheck: 'false', required: true });
  const problem = h('div', null, message ? notice('error', message) : null);
  const submit = async (e) => {
    e.preventDefault();
    token.set(input.value);
    try {
      await start();
    } catch (err) {
      token.clear();
      replace(
        problem,
        notice('error', err.status === 401 ? 'berth refused this token (401): check it, and that the engine config lists it under auth.tokens.' : err.message),
      );
    }
  };
  main.removeAttribute('aria-busy');
  replace(
    main,
    h(
      'form',
      { class: 'panel token-form', onsubmit: submit },
      h('h1', null, 'Sign in to berth'),
      h(
        'p',
        null,
        'Paste an API token. A viewer token shows everything; an operator token also lets you sync, roll back, pause and resume. ',
        'The token stays in this browser (localStorage) and is sent only to this berth.',
      ),
      problem,
      h('label', { for: 'token' }, 'API token'),
      input,
      h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
    ),
  );
  document.title = 'Sign in · berth';
  input.focus();
}

/** Finds out who the token is, opens the event stream and draws the page; rejects with the API's error. */
async function start() {
  me = await api('/me');
  replace(who, h('span', { class: 'who-name' }, me.name), ' ', badge(me.role, { tone: 'neutral' }));
  changeToken.hidden = !token.get();
  stopEvents?.();
  stopEvents = listen(onEvent, onLive);
  await render();
}

changeToken.addEventListener('click', () => {
  token.clear();
  askToken();
});
window.addEventListener('hashchange', () => me && void render());
keepTimesCurrent();
start().catch((err) => {
  if (err.status === 401) askToken(token.get() ? 'berth refused the saved token (401): paste a valid one.' : undefined);
  else replace(main, notice('error', err.message), h('p', null, h('a', { href: '' }, 'Try again')));
});

// ---------------------------------------------------------------- shared pieces

/**
 * Briefly highlights what a live update added or changed: a calm tint that fades within 1.5 s
 * (not the colour of a warning: a change is news, not trouble).
 */
function highlight(el) {
  el.classList.add('highlight');
  setTimeout(() => el.classList.remove('highlight'), 1500);
}

/** Calls fn once per key after events stop arriving for 150 ms. */
function debouncer(fn) {
  const timers = new Map();
  return (key, ...args) => {
    clearTimeout(timers.get(key));
    timers.set(
      key,
      setTimeout(() => {
        timers.delete(key);
        Promise.resolve(fn(key, ...args)).catch((err) => console.error('live update failed', err));
      }, 150),
    );
  };
}

/** A commit: short SHA (a link to its audit rows), first line of its message, author. */
function commitCell(sha, info) {
  if (!sha) return h('span', { class: 'muted' }, 'none applied yet');
  return h(
    'div',
    { class: 'commit' },
    link('/audit', { commit: sha }, short(sha)),
    info?.message ? h('span', { class: 'commit-msg' }, firstLine(info.message)) : null,
    info?.author ? h('span', { class: 'commit-author' }, info.author) : null,
  );
}

/** Messages and authors of the commits synced so far, by SHA (from the sync.started rows). */
async function commitMessages(stack) {
  const known = new Map();
  const { rows } = await api('/audit', { params: { kind: 'sync.started', stack, limit: 500 } }).catch(() => ({ rows: [] }));
  for (const r of rows) learnCommit(known, r);
  return known;
}
function learnCommit(known, row) {
  if (row.commitSha && row.commitMessage !== undefined && !known.has(row.commitSha)) {
    known.set(row.commitSha, { sha: row.commitSha, message: row.commitMessage, author: row.commitAuthor });
  }
}

/** A filter form whose values go to the URL (so the filtered page can be shared). */
function filterForm(path, q, fields) {
  const inputs = fields.map((f) => {
    const id = `f-${f.name}`;
    const input = f.options
      ? h(
          'select',
          { id, name: f.name },
          h('option', { value: '' }, 'any'),
          f.options.map((o) => h('option', { value: o, selected: q[f.name] === o }, o)),
        )
      : h('input', {
          id,
          name: f.name,
          value: q[f.name] ?? '',
          placeholder: f.placeholder ?? '',
          list: f.list ? `${id}-list` : undefined,
          autocomplete: 'off',
          spellcheck: 'false',
        });
    return h(
      'div',
      { class: 'field' },
      h('label', { for: id }, f.label ?? `${f.name[0].toUpperCase()}${f.name.slice(1)}`),
      input,
      f.list
        ? h(
            'datalist',
            { id: `${id}-list` },
            f.list.map((o) => h('option', { value: o })),
          )
        : null,
    );
  });
  const submit = (e) => {
    e.preventDefault();
    const values = Object.fromEntries(new FormData(e.currentTarget));
    location.hash = href(path, values);
  };
  return h(
    'form',
    { class: 'filters', onsubmit: submit, role: 'search' },
    inputs,
    h('div', { class: 'field buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Filter'), link(path, {}, 'Clear')),
  );
}

/** Newest / Older links: the cursor lives in the URL too. */
function pager(path, q, nextCursor) {
  if (!q.cursor && !nextCursor) return null;
  return h(
    'nav',
    { class: 'pager', 'aria-label': 'Pages' },
    q.cursor ? link(path, { ...q, cursor: undefined }, '← Newest') : h('span'),
    nextCursor ? link(path, { ...q, cursor: nextCursor }, 'Older →') : null,
  );
}

const hostsOf = (s) => [...new Set(s.replicas.map((r) => r.host))].sort();

/** A replica's Docker state, coloured by state and health together. */
function replicaState(r) {
  const t = r.state === 'running' ? (r.health === 'unhealthy' ? 'bad' : r.health === 'starting' ? 'warn' : 'good') : undefined;
  return h('span', null, badge(r.state, { tone: t }), r.health ? h('span', { class: 'muted' }, ` ${r.health}`) : null);
}

// ---------------------------------------------------------------- overview

const STACK_COLUMNS = [
  { label: 'Stack', cell: (s) => h('div', null, link(`/stacks/${enc(s.name)}`, {}, h('strong', null, s.name)), h('div', { class: 'muted small' }, s.repo)) },
  {
    label: 'Sync',
    cell: (s) =>
      h(
        'span',
        { class: 'badges' },
        badge(s.sync, { title: 'Do the hosts run what Git says?' }),
        s.held ? badge('held', { title: `${s.held.reason} by ${s.held.actor}` }) : null,
      ),
  },
  { label: 'Health', cell: (s) => badge(s.health) },
  { label: 'Commit applied', cell: (s) => commitCell(s.commit, s.commitInfo) },
  {
    label: 'Hosts',
    cell: (s) =>
      s.replicas.length
        ? h('div', null, hostsOf(s).join(', '), h('div', { class: 'muted small nowrap' }, plural(s.replicas.filter((r) => !r.extra).length, 'replica')))
        : h('span', { class: 'muted' }, '—'),
  },
  {
    label: 'Status',
    class: 'wide',
    cell: (s) => (s.condition || s.reason ? h('div', null, badge(s.condition), s.reason ? h('div', { class: 'reason' }, s.reason) : null) : null),
  },
];

/** What a stack's row says of its status; only an update that changes it is highlighted. */
const statusOf = (s) => JSON.stringify([s.sync, s.health, s.condition ?? null, s.commit ?? null, Boolean(s.held)]);

/** Whether two rows show the same thing in every cell (the row's own class, a highlight, aside). */
const sameCells = (a, b) => a.cells.length === b.cells.length && [...a.cells].every((td, i) => td.isEqualNode(b.cells[i]));

function summary(stacks, hosts) {
  const count = (f) => stacks.filter(f).length;
  const card = (n, label, t, to) => h('a', { class: `card tone-${n ? t : 'neutral'}`, href: to }, h('span', { class: 'n' }, String(n)), label);
  return [
    card(stacks.length, 'stacks', 'neutral', '#/'),
    card(
      count((s) => s.sync === 'Synced'),
      'synced',
      'good',
      '#/',
    ),
    card(
      count((s) => s.sync === 'OutOfSync'),
      'out of sync',
      'warn',
      '#/drift',
    ),
    card(
      count((s) => s.health === 'Degraded' || s.health === 'Missing' || s.condition),
      'need attention',
      'bad',
      '#/',
    ),
    card(
      hosts.filter((x) => x.state === 'up').length,
      `of ${plural(hosts.length, 'host')} up`,
      hosts.every((x) => x.state === 'up') ? 'good' : 'bad',
      '#/hosts',
    ),
  ];
}

const hostLink = (x) => link(`/hosts/${enc(x.name)}`, {}, h('strong', null, x.name));
const hostState = (x) => h('span', null, badge(x.state), ' ', h('span', { class: 'muted small' }, 'since ', time(x.since)));

function hostsTable(hosts) {
  return table(
    [
      { label: 'Host', cell: hostLink },
      { label: 'State', cell: hostState },
      { label: 'Endpoint', cell: (x) => h('code', null, x.endpoint) },
      { label: 'Labels', cell: (x) => Object.entries(x.labels ?? {}).map(([k, v]) => h('span', { class: 'chip' }, `${k}=${v}`)) },
      { label: 'Docker', cell: (x) => (x.version ? `${x.version} (API ${x.apiVersion})` : '—') },
      { label: 'CPUs · memory', cell: (x) => (x.cpus ? `${x.cpus} · ${(x.memoryBytes / 2 ** 30).toFixed(1)} GiB` : '—') },
      { label: 'Containers', cell: (x) => String(x.containers ?? '—') },
      { label: 'Error', class: 'wide', cell: (x) => (x.error ? h('span', { class: 'reason' }, x.error) : null) },
    ],
    hosts,
    { key: (x) => x.name, empty: 'No hosts configured.' },
  );
}

async function overviewView() {
  const [{ stacks }, { hosts }] = await Promise.all([api('/stacks'), api('/hosts')]);
  const byName = new Map(stacks.map((s) => [s.name, s]));
  let hostList = hosts;
  const cards = h('div', { class: 'summary' });
  const drawCards = () => replace(cards, summary([...byName.values()], hostList));
  const stackTable = table(STACK_COLUMNS, stacks, { key: (s) => s.name, empty: 'No stacks: berth found no Compose files in its repos yet.' });
  const hostsBox = h('div', null, hostsTable(hosts));
  drawCards();
  const refreshHosts = debouncer(async () => {
    hostList = (await api('/hosts')).hosts;
    replace(hostsBox, hostsTable(hostList));
    drawCards();
  });
  return {
    title: 'Overview',
    node: h('div', null, h('h1', null, 'Overview'), cards, section('Stacks', stackTable), section('Hosts', hostsBox)),
    onEvent(type, data) {
      if (type === 'audit' && String(data.kind).startsWith('host.')) refreshHosts('hosts');
      if (type !== 'stack') return;
      const before = byName.get(data.name);
      byName.set(data.name, data);
      drawCards();
      const row = stackTable.row(data);
      const old = stackTable.body.querySelector(`tr[data-key="${CSS.escape(data.name)}"]`);
      if (old && sameCells(old, row)) return; // nothing it shows changed: the row stays as it is
      if (old) old.replaceWith(row);
      else {
        stackTable.body.querySelector('tr.empty')?.remove();
        add(stackTable.body, row);
      }
      if (!before || statusOf(before) !== statusOf(data)) highlight(row);
    },
  };
}

// ---------------------------------------------------------------- stack

const REPLICA_COLUMNS = [
  {
    label: 'Replica',
    cell: (r) => h('span', null, `#${r.slot}`, r.extra ? h('span', { class: 'muted small' }, ' not in Git: removed at the next sync') : null),
  },
  { label: 'Host', cell: (r) => r.host },
  { label: 'Container', cell: (r) => short(r.container, 12) },
  { label: 'State', cell: replicaState },
  // pinned: the image with its digest (docs/how-it-works.md, "Images")
  { label: 'Image', cell: (r) => (r.container ? imageCell(r.image) : '') },
  { label: 'Commit', cell: (r) => short(r.commit) },
];

function stackHeader(s) {
  return h(
    'div',
    { class: 'stack-head' },
    h('h1', null, s.name, ' ', h('span', { class: 'badges' }, badge(s.sync), badge(s.health), badge(s.condition), s.held ? badge('held') : null)),
    h(
      'dl',
      { class: 'facts' },
      h('dt', null, 'Repo'),
      h('dd', null, s.repo),
      h('dt', null, 'Commit applied'),
      h('dd', null, commitCell(s.commit, s.commitInfo)),
      h('dt', null, 'Hosts'),
      h('dd', null, hostsOf(s).join(', ') || '—'),
      s.held ? [h('dt', null, 'Held'), h('dd', null, `${s.held.reason} by ${s.held.actor}`, s.held.since ? [' ', time(s.held.since)] : null)] : null,
    ),
    s.reason ? notice(s.condition || s.health === 'Degraded' ? 'error' : 'info', h('div', { class: 'reason' }, s.reason)) : null,
  );
}

function servicesBlock(s) {
  if (!s.replicas.length) return h('p', { class: 'muted' }, 'No replicas.');
  const groups = new Map();
  for (const r of [...s.replicas].sort((a, b) => a.host.localeCompare(b.host) || a.slot - b.slot)) {
    if (!groups.has(r.service)) groups.set(r.service, []);
    groups.get(r.service).push(r);
  }
  return [...groups]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([service, replicas]) =>
      h(
        'div',
        { class: 'service' },
        h(
          'h3',
          null,
          service,
          ' ',
          h(
            'span',
            { class: 'muted small' },
            `${plural(replicas.filter((r) => !r.extra).length, 'replica')} on ${[...new Set(replicas.map((r) => r.host))].join(', ')}`,
          ),
        ),
        table(REPLICA_COLUMNS, replicas, { key: (r) => `${r.service}#${r.slot}@${r.host}` }),
      ),
    );
}

/** 1536 -> "1.5 KiB" */
function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

const STATS_COLUMNS = [
  { label: 'Replica', cell: (r) => `${r.service}#${r.slot}` },
  { label: 'Host', cell: (r) => r.host },
  { label: 'CPU', cell: (r) => (r.sample ? `${r.sample.cpuPercent.toFixed(1)} %` : '') },
  {
    label: 'Memory',
    cell: (r) => (r.sample ? `${bytes(r.sample.memoryBytes)} of ${bytes(r.sample.memoryLimitBytes)} (${r.sample.memoryPercent.toFixed(1)} %)` : ''),
  },
  { label: 'Network in / out', cell: (r) => (r.sample ? `${bytes(r.sample.networkRxBytes)} / ${bytes(r.sample.networkTxBytes)}` : '') },
  { label: 'Block read / written', cell: (r) => (r.sample ? `${bytes(r.sample.blockReadBytes)} / ${bytes(r.sample.blockWriteBytes)}` : '') },
  { label: 'Processes', cell: (r) => String(r.sample?.pids ?? '') },
  { label: 'Note', class: 'wide', cell: (r) => (r.error ? h('span', { class: 'muted' }, r.error) : '') },
];

/** One sample of each replica's resource use, asked of the hosts when the button is pressed (nothing polls). */
function statsBlock(name) {
  const out = h('div', null, h('p', { class: 'muted small' }, 'CPU, memory, network and block I/O of each replica, one sample asked of its host.'));
  const button = h('button', { type: 'button', class: 'stats-sample' }, 'Sample now');
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      const stats = await api(`/stacks/${enc(name)}/stats`);
      replace(
        out,
        h('p', { class: 'muted small' }, 'Sampled ', time(stats.sampledAt)),
        table(STATS_COLUMNS, stats.replicas, { key: (r) => `${r.service}#${r.slot}@${r.host}`, empty: 'No replicas.' }),
      );
    } catch (err) {
      replace(out, notice('error', err.message));
    } finally {
      button.disabled = false;
    }
  });
  return h('div', { class: 'stats' }, button, out);
}

/** Sync now, roll back to a chosen commit, pause / resume: only for operators and admins. */
function actionBar(name, getState, syncs, messages, refresh) {
  const msg = h('div', { class: 'action-msg', 'aria-live': 'polite' });
  const act = (what, fn) => async (e) => {
    const button = e.currentTarget;
    button.disabled = true;
    replace(msg);
    try {
      const text = await fn();
      if (text) replace(msg, notice('ok', text));
    } catch (err) {
      replace(msg, notice('error', `${what} failed: ${err.message}`));
    } finally {
      button.disabled = false;
    }
  };
  const post = (action, body = {}) => api(`/stacks/${enc(name)}/${action}`, { method: 'POST', body });

  const applied = getState().commit;
  const commits = [...new Set(syncs.filter((s) => s.outcome === 'succeeded' && s.commitSha !== applied).map((s) => s.commitSha))];
  const select = h(
    'select',
    { id: 'rollback-to', name: 'commit', 'aria-label': 'Commit to roll back to' },
    h('option', { value: '' }, 'previous commit'),
    commits.map((sha) => h('option', { value: sha }, `${sha.slice(0, 7)} ${firstLine(messages.get(sha)?.message ?? '')}`.trim())),
  );
  const pauseButton = h('button', { type: 'button' });
  const drawPause = () => {
    const held = Boolean(getState().held);
    pauseButton.textContent = held ? 'Resume' : 'Pause';
    pauseButton.title = held ? 'Let automatic syncs apply new commits again' : 'Stop automatic syncs of this stack until resumed';
  };
  pauseButton.addEventListener(
    'click',
    act('Pause / resume', async () => {
      const resume = Boolean(getState().held);
      const res = await post(resume ? 'resume' : 'pause');
      await refresh();
      return res.paused ? 'Paused: automatic syncs leave this stack alone until you resume it.' : 'Resumed.';
    }),
  );
  drawPause();

  const node = h(
    'div',
    { class: 'actions panel' },
    h(
      'button',
      {
        type: 'button',
        class: 'primary',
        onclick: act('Sync', async () => {
          await post('sync');
          return 'Sync started: it shows in the list below as it runs.';
        }),
      },
      'Sync now',
    ),
    h(
      'span',
      { class: 'rollback' },
      h('label', { for: 'rollback-to' }, 'Roll back to'),
      select,
      h(
        'button',
        {
          type: 'button',
          onclick: act('Rollback', async () => {
            const to = select.value;
            if (
              !confirm(
                `Roll ${name} back to ${to ? to.slice(0, 7) : 'the commit before the applied one'}? The stack stays held there until resumed or a new commit arrives.`,
              )
            )
              return '';
            await post('rollback', to ? { commit: to } : {});
            return 'Rollback started: it shows in the list below as it runs.';
          }),
        },
        'Roll back',
      ),
    ),
    pauseButton,
    msg,
  );
  return { node, update: drawPause };
}

/**
 * The syncs, newest first, grouped by commit; kept current by the sync and audit events.
 * filter: { stack, commit } as on the page; live: false on an older page (nothing new is added).
 */
function syncTimeline(initial, messages, { stack, commit, live: addNew = true } = {}) {
  const syncs = new Map(initial.map((s) => [s.id, s]));
  const node = h('div', { class: 'timeline' });
  const matches = (s) => (!stack || s.stack === stack) && (!commit || s.commitSha.startsWith(commit.toLowerCase()));
  const item = (s) =>
    h(
      'li',
      { class: `sync outcome-${s.outcome}`, dataset: { syncId: String(s.id) } },
      h(
        'div',
        { class: 'sync-line' },
        badge(s.outcome),
        s.result && s.result !== 'failed' ? badge(s.result) : null,
        link(`/syncs/${s.id}`, {}, `Sync #${s.id}`),
        stack ? null : link(`/stacks/${enc(s.stack)}`, {}, s.stack),
        h(
          'span',
          { class: 'muted small' },
          `${s.trigger} by ${s.actor} · `,
          time(s.startedAt),
          s.finishedAt ? ` · took ${duration(s.startedAt, s.finishedAt)}` : '',
        ),
      ),
      s.error ? h('div', { class: 'sync-error' }, firstLine(s.error)) : null,
    );
  const draw = () => {
    const groups = [];
    for (const s of [...syncs.values()].sort((a, b) => b.id - a.id)) {
      const last = groups.at(-1);
      if (last?.sha === s.commitSha) last.items.push(s);
      else groups.push({ sha: s.commitSha, items: [s] });
    }
    replace(
      node,
      groups.length
        ? groups.map((g) =>
            h(
              'div',
              { class: 'commit-group' },
              h('div', { class: 'commit-head' }, commitCell(g.sha, messages.get(g.sha))),
              h('ol', { class: 'syncs' }, g.items.map(item)),
            ),
          )
        : h('p', { class: 'muted' }, 'No syncs yet.'),
    );
  };
  const fetchSync = debouncer(async (id) => {
    if (!addNew && !syncs.has(id)) return;
    const { steps, ...s } = await api(`/syncs/${id}`);
    for (const r of steps ?? []) learnCommit(messages, r);
    if (!matches(s)) return;
    syncs.set(s.id, s);
    draw();
    const li = node.querySelector(`li[data-sync-id="${s.id}"]`);
    if (li) highlight(li);
  });
  draw();
  return {
    node,
    onEvent(type, data) {
      if (type === 'sync' && data.phase !== 'step' && (!stack || data.stack === stack)) fetchSync(data.id);
      if (type === 'audit') {
        learnCommit(messages, data);
        if (data.syncId && /^sync\.(started|succeeded|failed)$/.test(data.kind) && (!stack || data.stack === stack)) fetchSync(data.syncId);
      }
    },
  };
}

/** The stack page's tabs: its overview, its logs (`?tab=logs`). */
function stackTabs(name, tab) {
  const tabLink = (id, label) =>
    h('a', { href: href(`/stacks/${enc(name)}`, { tab: id === 'overview' ? undefined : id }), 'aria-current': tab === id ? 'page' : undefined }, label);
  return h('nav', { class: 'tabs', 'aria-label': 'Stack' }, tabLink('overview', 'Overview'), tabLink('logs', 'Logs'));
}

async function stackView(q, name) {
  const tab = q.tab === 'logs' ? 'logs' : 'overview';
  if (tab === 'logs') return stackLogsView(q, name);
  const [stack, { syncs }, messages] = await Promise.all([
    api(`/stacks/${enc(name)}`),
    api('/syncs', { params: { stack: name, limit: 20 } }),
    commitMessages(name),
  ]);
  let state = stack;
  const head = h('div');
  const services = h('div');
  const timeline = syncTimeline(syncs, messages, { stack: name });
  const refresh = async () => {
    state = await api(`/stacks/${enc(name)}`);
    draw();
  };
  const actions = canAct() ? actionBar(name, () => state, syncs, messages, refresh) : null;
  const draw = () => {
    replace(head, stackHeader(state));
    replace(services, servicesBlock(state));
    actions?.update();
  };
  draw();
  return {
    title: name,
    node: h(
      'div',
      null,
      h('p', { class: 'crumbs' }, link('/', {}, 'Overview'), ' / ', name),
      head,
      stackTabs(name, tab),
      actions?.node,
      section('Services', services),
      section('Resource use', statsBlock(name)),
      section('Syncs', timeline.node, h('p', null, link('/syncs', { stack: name }, `All syncs of ${name} →`))),
    ),
    onEvent(type, data) {
      if (type === 'stack' && data.name === name) {
        state = data;
        draw();
      }
      timeline.onEvent(type, data);
    },
  };
}

// ---------------------------------------------------------------- a stack's logs

/** The lines the page keeps: older ones are dropped as new ones come, so that it stays quick. */
const LOG_LINES_KEPT = 5000;
/** The choices of lines per container (the API's tail): its default first. */
const LOG_TAILS = ['200', '1000', '5000', '10000'];

/**
 * The Logs tab: the lines of the stack's containers (GET /api/v1/stacks/:name/logs), one service's
 * or all (?service=), the last 200 of each container or more (?tail=), and with ?follow=1 then
 * the lines as they are written. Lines are added once per frame, and only the last LOG_LINES_KEPT
 * stay on the page.
 */
async function stackLogsView(q, name) {
  const state = await api(`/stacks/${enc(name)}`);
  const head = h('div', null, stackHeader(state));
  const follow = q.follow === '1';
  const services = new Set([...state.replicas.map((r) => r.service), ...(q.service ? [q.service] : [])]);
  const tail = LOG_TAILS.includes(q.tail) ? q.tail : LOG_TAILS[0];
  const go = (change) =>
    (location.hash = href(`/stacks/${enc(name)}`, { tab: 'logs', service: q.service, tail: q.tail, follow: follow ? '1' : undefined, ...change }));
  const select = h(
    'select',
    { id: 'logs-service', name: 'service', onchange: (e) => go({ service: e.currentTarget.value || undefined }) },
    h('option', { value: '' }, 'every service'),
  );
  const drawServices = () =>
    replace(
      select,
      h('option', { value: '' }, 'every service'),
      [...services].sort().map((s) => h('option', { value: s, selected: s === q.service }, s)),
    );
  drawServices();
  const tailSelect = h(
    'select',
    { id: 'logs-tail', name: 'tail', onchange: (e) => go({ tail: e.currentTarget.value === LOG_TAILS[0] ? undefined : e.currentTarget.value }) },
    LOG_TAILS.map((t) => h('option', { value: t, selected: t === tail }, `last ${Number(t).toLocaleString()}`)),
  );
  const followBox = h('input', {
    type: 'checkbox',
    id: 'logs-follow',
    checked: follow,
    onchange: (e) => go({ follow: e.currentTarget.checked ? '1' : undefined }),
  });
  const status = h('span', { class: 'muted small', id: 'logs-status', 'aria-live': 'polite' }, follow ? 'following…' : 'loading…');
  const problem = h('div');
  const out = h('div', { class: 'logs', id: 'logs', role: 'log', tabindex: '0', 'aria-label': `Logs of ${name}` });

  const colours = new Map();
  const colourOf = (prefix) => {
    if (!colours.has(prefix)) colours.set(prefix, colours.size % 10);
    return colours.get(prefix);
  };
  let width = 0;
  let shown = 0;
  let dropped = 0;
  let queue = [];
  let frame = 0;
  const lineNode = (r) => {
    if (r.notice) return h('div', { class: 'log-line log-notice' }, `berth: ${r.message}`);
    const prefix = `${r.service}.${r.slot}@${r.host}`;
    return h(
      'div',
      { class: `log-line${r.stream === 'stderr' ? ' log-stderr' : ''}` },
      h('span', { class: `log-prefix c${colourOf(prefix)}` }, prefix.padEnd(width), ' | '),
      r.time ? h('span', { class: 'log-time' }, `${r.time} `) : null,
      r.text,
    );
  };
  const drawStatus = (ended) => {
    const kept = dropped ? ` (the last ${LOG_LINES_KEPT.toLocaleString()} kept)` : '';
    status.textContent = `${shown.toLocaleString()} line(s)${kept}${follow ? (ended ? ' · ended: every container stopped' : ' · following') : ''}`;
  };
  // one DOM update per frame, whatever the number of lines that came meanwhile
  const flush = () => {
    frame = 0;
    const batch = queue;
    queue = [];
    if (!batch.length) return;
    const atBottom = out.scrollHeight - out.scrollTop - out.clientHeight < 40;
    const fragment = document.createDocumentFragment();
    for (const r of batch) fragment.append(lineNode(r));
    out.append(fragment);
    while (out.childElementCount > LOG_LINES_KEPT) {
      out.firstElementChild.remove();
      dropped++;
    }
    if (atBottom) out.scrollTop = out.scrollHeight;
    drawStatus(false);
  };
  const onRecord = (r) => {
    if (r.replicas) {
      width = Math.max(0, ...r.replicas.map((x) => `${x.service}.${x.slot}@${x.host}`.length));
      const before = services.size;
      for (const x of r.replicas) services.add(x.service);
      if (services.size !== before) drawServices();
      return;
    }
    if (!r.notice) shown++;
    queue.push(r);
    // lines that would be dropped at once are not drawn at all
    if (queue.length > LOG_LINES_KEPT) {
      dropped += queue.length - LOG_LINES_KEPT;
      queue = queue.slice(-LOG_LINES_KEPT);
    }
    if (!frame) frame = requestAnimationFrame(flush);
  };
  const abort = new AbortController();
  streamLines(`/stacks/${enc(name)}/logs`, { params: { service: q.service, tail, follow: follow ? 'true' : undefined }, signal: abort.signal, onRecord })
    .then(() => {
      if (abort.signal.aborted) return;
      flush();
      drawStatus(true);
      if (!shown && !out.firstElementChild) replace(out, h('p', { class: 'muted' }, 'No lines.'));
    })
    .catch((err) => {
      if (abort.signal.aborted) return;
      status.textContent = '';
      replace(problem, notice('error', err.message));
    });
  return {
    title: `${name} logs`,
    node: h(
      'div',
      null,
      h('p', { class: 'crumbs' }, link('/', {}, 'Overview'), ' / ', link(`/stacks/${enc(name)}`, {}, name), ' / logs'),
      head,
      stackTabs(name, 'logs'),
      h(
        'section',
        { class: 'panel' },
        h(
          'div',
          { class: 'logs-bar' },
          h('label', { for: 'logs-service' }, 'Service'),
          select,
          h('label', { for: 'logs-tail' }, 'Lines per container'),
          tailSelect,
          h('label', { class: 'check' }, followBox, ' Follow'),
          status,
        ),
        problem,
        out,
      ),
    ),
    onEvent(type, data) {
      if (type === 'stack' && data.name === name) replace(head, stackHeader(data));
    },
    dispose() {
      abort.abort();
    },
  };
}

// ---------------------------------------------------------------- syncs

async function syncsView(q) {
  const [{ syncs, nextCursor }, messages] = await Promise.all([
    api('/syncs', { params: { stack: q.stack, commit: q.commit, cursor: q.cursor, limit: 50 } }),
    commitMessages(q.stack),
  ]);
  const timeline = syncTimeline(syncs, messages, { stack: q.stack, commit: q.commit, live: !q.cursor });
  return {
    title: 'Syncs',
    node: h(
      'div',
      null,
      h('h1', null, 'Syncs'),
      filterForm('/syncs', q, [{ name: 'stack' }, { name: 'commit', placeholder: 'SHA or prefix' }]),
      timeline.node,
      pager('/syncs', q, nextCursor),
    ),
    onEvent: timeline.onEvent,
  };
}

const clock = (iso) => h('time', { datetime: iso, title: new Date(iso).toLocaleString() }, new Date(iso).toLocaleTimeString());

const PLAN_COLUMNS = [
  { label: 'Action', cell: (a) => badge(a.kind) },
  { label: 'Replica', cell: (a) => `${a.service}#${a.slot}` },
  { label: 'Host', cell: (a) => a.host },
  { label: 'Container', cell: (a) => short(a.container, 12) },
  { label: 'Why', class: 'wide', cell: (a) => a.reason ?? '' },
];

/** A diff shown only when asked (steps can each carry one). */
function lazyDiff(text, title) {
  const details = h('details', { class: 'row-diff' }, h('summary', null, 'diff'));
  details.addEventListener(
    'toggle',
    () => {
      if (details.open && details.children.length === 1) add(details, diffView(text, { title }));
    },
    { once: false },
  );
  return details;
}

const STEP_COLUMNS = [
  { label: 'Time', class: 'nowrap', cell: (r) => clock(r.time) },
  { label: 'Step', cell: (r) => h('code', null, r.kind) },
  { label: 'Service', cell: (r) => r.service ?? '' },
  { label: 'Host', cell: (r) => r.host ?? '' },
  { label: 'Result', cell: (r) => badge(r.outcome) },
  {
    label: 'Detail',
    class: 'wide',
    cell: (r) =>
      h(
        'div',
        null,
        h('div', { class: 'reason' }, r.message ?? ''),
        r.evidence ? evidenceBlock(r.evidence) : null,
        r.diff && r.kind !== 'sync.started' ? lazyDiff(r.diff) : null,
      ),
  },
];

async function syncView(_q, id) {
  let sync = await api(`/syncs/${id}`);
  const steps = new Map(sync.steps.map((r) => [r.id, r]));
  const body = h('div');
  // each service's replicas updated out of those the rollout changes: from the sync, then from its progress events
  let progress = sync.progress ?? [];
  const progressNode = h('div', { class: 'rollout-progress' });
  const drawProgress = () => replace(progressNode, progress.length ? progressList(progress) : h('p', { class: 'muted' }, 'No replica is created or replaced.'));
  drawProgress();
  const stepsTable = table(STEP_COLUMNS, [], { key: (r) => r.id, empty: 'No steps recorded.', rowClass: (r) => `outcome-${r.outcome}` });
  const drawSteps = () => stepsTable.fill([...steps.values()].sort((a, b) => a.id - b.id));
  const draw = () => {
    const s = sync;
    const info = [...steps.values()].find((r) => r.commitSha === s.commitSha && r.commitMessage !== undefined);
    const changes = (s.plan?.actions ?? []).filter((a) => a.kind !== 'keep');
    const kept = (s.plan?.actions ?? []).length - changes.length;
    replace(
      body,
      h(
        'p',
        { class: 'crumbs' },
        link('/', {}, 'Overview'),
        ' / ',
        link(`/stacks/${enc(s.stack)}`, {}, s.stack),
        ' / ',
        link('/syncs', { stack: s.stack }, 'Syncs'),
        ` / #${s.id}`,
      ),
      h(
        'h1',
        null,
        `Sync #${s.id} of ${s.stack} `,
        h('span', { class: 'badges' }, badge(s.outcome), s.result && s.result !== 'failed' ? badge(s.result) : null),
      ),
      s.error
        ? notice('error', h('strong', null, s.outcome === 'running' ? 'Error' : 'This sync failed'), h('pre', { class: 'sync-error-text' }, s.error))
        : null,
      // what the replica whose failure ended it showed, open: the step it failed at has it too, folded
      s.evidence ? evidenceBlock(s.evidence, { open: true }) : null,
      h(
        'dl',
        { class: 'facts' },
        h('dt', null, 'Commit'),
        h('dd', null, commitCell(s.commitSha, info && { message: info.commitMessage, author: info.commitAuthor })),
        h('dt', null, 'Repo'),
        h('dd', null, s.repo),
        h('dt', null, 'Trigger'),
        h('dd', null, `${s.trigger} by ${s.actor}`),
        h('dt', null, 'Started'),
        h('dd', null, time(s.startedAt), ` (${new Date(s.startedAt).toLocaleString()})`),
        h('dt', null, 'Finished'),
        h('dd', null, s.finishedAt ? [time(s.finishedAt), ` after ${duration(s.startedAt, s.finishedAt)}`] : 'still running'),
        h('dt', null, 'Audit'),
        h('dd', null, link('/audit', { commit: s.commitSha, stack: s.stack }, 'every row of this commit and stack')),
      ),
      section(
        'Plan',
        changes.length
          ? table(PLAN_COLUMNS, changes, { key: (a) => `${a.kind}:${a.service}#${a.slot}@${a.host}` })
          : h('p', { class: 'muted' }, 'No container changes.'),
        kept ? h('p', { class: 'muted small' }, `${plural(kept, 'replica')} unchanged.`) : null,
        (s.plan?.networks ?? []).map((n) => h('p', { class: 'small' }, `create network ${n.name} on ${n.host}`)),
        (s.plan?.volumes ?? []).map((v) => h('p', { class: 'small' }, `create volume ${v.name} on ${v.host}`)),
      ),
      section('Replicas', progressNode),
      section('Steps', stepsTable),
      section('Diff', h('p', { class: 'muted small' }, 'What the plan changes: live (−) against desired at this commit (+).'), diffView(s.diff)),
    );
  };
  drawSteps();
  draw();
  const reload = debouncer(async () => {
    sync = await api(`/syncs/${id}`);
    for (const r of sync.steps) steps.set(r.id, r);
    if (sync.progress) progress = sync.progress;
    drawProgress();
    drawSteps();
    draw();
  });
  const addStep = (row) => {
    if (steps.has(row.id)) return;
    steps.set(row.id, row);
    drawSteps();
    const tr = stepsTable.body.querySelector(`tr[data-key="${row.id}"]`);
    if (tr) highlight(tr);
  };
  return {
    title: `Sync #${id}`,
    node: body,
    onEvent(type, data) {
      if (type === 'audit' && data.syncId === sync.id) {
        addStep(data);
        if (data.kind === 'sync.succeeded' || data.kind === 'sync.failed') reload('sync');
      }
      if (type === 'sync' && data.id === sync.id) {
        if (data.step) addStep(data.step);
        if (data.services) {
          progress = data.services;
          drawProgress();
        }
        if (data.phase === 'finished') reload('sync');
      }
    },
  };
}

// ---------------------------------------------------------------- audit

const AUDIT_FILTERS = ['stack', 'host', 'commit', 'kind', 'since'];

const AUDIT_COLUMNS = [
  { label: 'Time', class: 'nowrap', cell: (r) => time(r.time) },
  { label: 'Kind', cell: (r) => link('/audit', { kind: r.kind }, h('code', null, r.kind)) },
  { label: 'Stack', cell: (r) => (r.stack ? link(`/stacks/${enc(r.stack)}`, {}, r.stack) : '') },
  { label: 'Service', cell: (r) => r.service ?? '' },
  { label: 'Host', cell: (r) => (r.host ? link('/audit', { host: r.host }, r.host) : '') },
  {
    label: 'Commit',
    cell: (r) => (r.commitSha ? h('span', { title: firstLine(r.commitMessage) }, link('/audit', { commit: r.commitSha }, short(r.commitSha))) : ''),
  },
  { label: 'Who', cell: (r) => h('span', null, r.actor, r.trigger ? h('span', { class: 'muted small' }, ` (${r.trigger})`) : null) },
  { label: 'Outcome', cell: (r) => badge(r.outcome) },
  {
    label: 'Message',
    class: 'wide',
    cell: (r) =>
      h(
        'div',
        null,
        h('div', { class: 'reason' }, r.message ?? ''),
        r.syncId ? link(`/syncs/${r.syncId}`, {}, `sync #${r.syncId}`) : null,
        r.diff ? lazyDiff(r.diff) : null,
      ),
  },
];

/** Whether a new row belongs on the audit page with these filters (since: new rows are always recent). */
function auditMatches(row, q) {
  return (
    (!q.stack || row.stack === q.stack) &&
    (!q.host || row.host === q.host) &&
    (!q.kind || row.kind === q.kind) &&
    (!q.commit || (row.commitSha ?? '').startsWith(q.commit.toLowerCase()))
  );
}

async function auditView(q) {
  const filters = Object.fromEntries(AUDIT_FILTERS.map((k) => [k, q[k]]));
  const { rows, nextCursor } = await api('/audit', { params: { ...filters, cursor: q.cursor, limit: 100 } });
  const t = table(AUDIT_COLUMNS, rows, { key: (r) => r.id, empty: 'No audit rows match these filters.', rowClass: (r) => `outcome-${r.outcome}` });
  const active = AUDIT_FILTERS.filter((k) => q[k]);
  return {
    title: 'Audit',
    node: h(
      'div',
      null,
      h('h1', null, 'Audit trail'),
      filterForm('/audit', q, [
        { name: 'stack' },
        { name: 'host' },
        { name: 'commit', placeholder: 'SHA or prefix' },
        { name: 'kind', list: KINDS },
        { name: 'since', placeholder: '2h, 7d or 2024-05-01' },
      ]),
      h(
        'p',
        { class: 'muted small', id: 'audit-count' },
        `${rows.length} row(s)${nextCursor ? ' on this page' : ''}`,
        active.length ? ` where ${active.map((k) => `${k} = ${q[k]}`).join(', ')}` : '',
        q.cursor ? '' : ' · new rows appear as they happen',
      ),
      t,
      pager('/audit', q, nextCursor),
    ),
    onEvent(type, row) {
      if (type !== 'audit' || q.cursor || !auditMatches(row, q)) return;
      if (t.body.querySelector(`tr[data-key="${row.id}"]`)) return;
      t.body.querySelector('tr.empty')?.remove();
      const tr = t.row(row);
      t.body.prepend(tr);
      highlight(tr);
    },
  };
}

// ---------------------------------------------------------------- webhook deliveries

const DELIVERY_COLUMNS = [
  { label: 'Time', class: 'nowrap', cell: (d) => time(d.time) },
  { label: 'Provider', cell: (d) => link('/deliveries', { provider: d.provider }, d.provider) },
  { label: 'Event', cell: (d) => d.event ?? '' },
  { label: 'Repo', cell: (d) => (d.repo ? link('/deliveries', { repo: d.repo }, d.repo) : h('span', { class: 'muted' }, 'none matched')) },
  { label: 'Branch', cell: (d) => d.branch ?? '' },
  { label: 'Commit', cell: (d) => (d.commitSha ? link('/audit', { commit: d.commitSha }, short(d.commitSha)) : '') },
  { label: 'Outcome', cell: (d) => h('span', null, badge(d.outcome), ' ', h('span', { class: 'muted small' }, `HTTP ${d.status}`)) },
  {
    label: 'Reason',
    class: 'wide',
    cell: (d) => h('div', null, d.reason ? h('strong', null, d.reason) : null, d.detail ? h('div', { class: 'reason' }, d.detail) : null),
  },
  { label: 'Delivery', cell: (d) => (d.deliveryId ? h('code', { class: 'small' }, d.deliveryId) : '') },
];

async function deliveriesView(q) {
  const params = { provider: q.provider, repo: q.repo, cursor: q.cursor, limit: 50 };
  const { deliveries, nextCursor } = await api('/deliveries', { params });
  const t = table(DELIVERY_COLUMNS, deliveries, { key: (d) => d.id, empty: 'No webhook deliveries yet.' });
  const refresh = debouncer(async () => t.fill((await api('/deliveries', { params })).deliveries));
  return {
    title: 'Webhooks',
    node: h(
      'div',
      null,
      h('h1', null, 'Webhook deliveries'),
      filterForm('/deliveries', q, [{ name: 'provider', options: ['github', 'gitlab', 'gitea', 'bitbucket', 'generic', 'registry'] }, { name: 'repo' }]),
      t,
      pager('/deliveries', q, nextCursor),
    ),
    onEvent(type, row) {
      if (type === 'audit' && !q.cursor && String(row.kind).startsWith('webhook.')) refresh('deliveries');
    },
  };
}

// ---------------------------------------------------------------- notifications

const NOTIFICATION_COLUMNS = [
  { label: 'Time', class: 'nowrap', cell: (n) => time(n.createdAt) },
  {
    label: 'Target',
    cell: (n) => h('div', null, link('/notifications', { target: n.target }, n.target), h('div', { class: 'muted small' }, n.type)),
  },
  { label: 'Event', cell: (n) => h('span', null, n.event, n.count > 1 ? h('span', { class: 'muted small' }, ` ×${n.count}`) : null) },
  {
    label: 'About',
    cell: (n) =>
      h(
        'div',
        null,
        n.stack ? link(`/stacks/${enc(n.stack)}`, {}, n.stack) : n.host ? link(`/hosts/${enc(n.host)}`, {}, n.host) : '',
        n.repo ? h('div', { class: 'muted small' }, n.repo) : null,
      ),
  },
  { label: 'Commit', cell: (n) => (n.commitSha ? link('/audit', { commit: n.commitSha }, short(n.commitSha)) : '') },
  { label: 'Sync', cell: (n) => (n.syncId ? link(`/syncs/${n.syncId}`, {}, `#${n.syncId}`) : '') },
  {
    label: 'Outcome',
    cell: (n) => h('span', null, badge(n.outcome), n.status ? h('span', { class: 'muted small' }, ` HTTP ${n.status}`) : null),
  },
  {
    label: 'Attempts',
    cell: (n) =>
      h(
        'div',
        null,
        String(n.attempts),
        n.outcome === 'pending' && n.nextAttemptAt ? h('div', { class: 'muted small' }, 'next ', time(n.nextAttemptAt)) : null,
      ),
  },
  { label: 'Error', class: 'wide', cell: (n) => (n.error ? h('div', { class: 'reason' }, n.error) : '') },
];

async function notificationsView(q) {
  const params = { target: q.target, outcome: q.outcome, cursor: q.cursor, limit: 50 };
  const { notifications, nextCursor } = await api('/notifications', { params });
  const t = table(NOTIFICATION_COLUMNS, notifications, {
    key: (n) => n.id,
    empty: 'No notifications yet: the engine config names no targets, or berth has had nothing to tell.',
  });
  const refresh = debouncer(async () => t.fill((await api('/notifications', { params })).notifications));
  return {
    title: 'Notifications',
    node: h(
      'div',
      null,
      h('h1', null, 'Notifications'),
      h('p', { class: 'muted' }, 'What berth told webhooks, chat services and forges, each delivery with its attempts and outcome.'),
      filterForm('/notifications', q, [{ name: 'target' }, { name: 'outcome', options: ['pending', 'delivered', 'failed', 'dropped'] }]),
      t,
      pager('/notifications', q, nextCursor),
    ),
    onEvent(type) {
      if (type === 'notification' && !q.cursor) refresh('notifications');
    },
  };
}

// ---------------------------------------------------------------- drift

async function driftView() {
  const load = () =>
    Promise.all([
      api('/audit', { params: { kind: 'drift.detected', limit: 500 } }),
      api('/audit', { params: { kind: 'drift.corrected', limit: 500 } }),
      api('/stacks'),
    ]);
  const body = h('div');
  const draw = ([detected, corrected, { stacks }]) => {
    // per container (stack, service, host): its latest detection, and whether it was put back since
    const latest = new Map();
    for (const r of detected.rows) {
      const key = `${r.stack}|${r.service ?? ''}|${r.host ?? ''}`;
      if (!latest.has(key)) latest.set(key, r);
    }
    const fixedAfter = (r) => corrected.rows.find((c) => c.stack === r.stack && c.service === r.service && c.host === r.host && c.id > r.id);
    const outOfSync = stacks.filter((s) => s.sync === 'OutOfSync');
    replace(
      body,
      section(
        'Out of sync now',
        outOfSync.length
          ? outOfSync.map((s) =>
              h(
                'div',
                { class: 'service' },
                h(
                  'h3',
                  null,
                  link(`/stacks/${enc(s.name)}`, {}, s.name),
                  ' ',
                  h('span', { class: 'badges' }, badge(s.sync), badge(s.health), badge(s.condition)),
                ),
                s.reason ? h('div', { class: 'reason small' }, s.reason) : null,
                table([{ label: 'Service', cell: (r) => r.service }, ...REPLICA_COLUMNS], s.replicas, { key: (r) => `${r.service}#${r.slot}@${r.host}` }),
              ),
            )
          : h('p', { class: 'muted' }, 'Every stack runs what Git says.'),
      ),
      section(
        'Drift detected, per container',
        latest.size
          ? [...latest.values()].map((r) => {
              const fixed = fixedAfter(r);
              return h(
                'article',
                { class: 'drift', dataset: { key: `${r.stack}|${r.service ?? ''}|${r.host ?? ''}` } },
                h(
                  'h3',
                  null,
                  link(`/stacks/${enc(r.stack)}`, {}, r.stack),
                  r.service ? ` / ${r.service}` : '',
                  r.host ? ` on ${r.host}` : '',
                  ' ',
                  fixed ? badge('corrected', { tone: 'good', title: fixed.message }) : badge('not corrected', { tone: 'bad' }),
                ),
                h(
                  'p',
                  { class: 'small' },
                  time(r.time),
                  ' · container ',
                  short(r.containerBefore, 12),
                  ' · ',
                  r.message ?? '',
                  r.syncId ? [' · ', link(`/syncs/${r.syncId}`, {}, `sync #${r.syncId}`)] : null,
                ),
                diffView(r.diff, { title: 'live (−) against desired (+)' }),
              );
            })
          : h('p', { class: 'muted' }, 'No drift recorded.'),
      ),
    );
  };
  draw(await load());
  const refresh = debouncer(async () => draw(await load()));
  return {
    title: 'Drift',
    node: h('div', null, h('h1', null, 'Drift'), h('p', { class: 'muted' }, 'Containers changed by hand, live against what Git says.'), body),
    onEvent(type, data) {
      if (type === 'stack' || (type === 'audit' && String(data.kind).startsWith('drift.'))) refresh('drift');
    },
  };
}

// ---------------------------------------------------------------- hosts

const HOST_LIST_COLUMNS = [
  { label: 'Host', cell: hostLink },
  { label: 'State', cell: hostState },
  { label: 'Endpoint', cell: (x) => h('code', null, x.endpoint) },
  { label: 'Containers', cell: (x) => String(x.containers ?? '—') },
  { label: 'Error', class: 'wide', cell: (x) => (x.error ? h('span', { class: 'reason' }, x.error) : null) },
];

/** The engines on berth's database (several share a PostgreSQL): which leads, and this one. */
const ENGINE_COLUMNS = [
  { label: 'Engine', cell: (e) => h('span', null, h('code', null, e.id), e.self ? h('span', { class: 'muted small' }, ' (this one)') : null) },
  { label: 'Role', cell: (e) => badge(e.role) },
  { label: 'Version', cell: (e) => e.version },
  { label: 'Last seen', cell: (e) => time(e.lastSeen) },
];

function enginesOf(cluster) {
  return cluster.engines.map((e) => ({ ...e, self: e.id === cluster.self.id }));
}

async function hostsView() {
  const [{ hosts }, cluster] = await Promise.all([api('/hosts'), api('/cluster')]);
  const t = table(HOST_LIST_COLUMNS, hosts, { key: (x) => x.name, empty: 'No hosts configured.' });
  const engines = table(ENGINE_COLUMNS, enginesOf(cluster), { key: (e) => e.id, empty: 'No engine.' });
  engines.id = 'engines';
  const leader = h('p', { class: 'muted', id: 'leader' });
  const showLeader = (c) =>
    leader.replaceChildren(
      c.leader ? `${c.leader.id === c.self.id ? 'This engine' : `Engine ${c.leader.id}`} leads since ` : 'No engine leads now.',
      c.leader ? time(c.leader.since) : '',
    );
  showLeader(cluster);
  const refresh = debouncer(async () => t.fill((await api('/hosts')).hosts));
  const refreshEngines = debouncer(async () => {
    const c = await api('/cluster');
    engines.fill(enginesOf(c));
    showLeader(c);
  });
  return {
    title: 'Hosts',
    node: h(
      'div',
      null,
      h('h1', null, 'Hosts'),
      h('p', { class: 'muted' }, 'The Docker hosts berth deploys to. Open one for its facts and containers.'),
      t,
      section('Engines', h('div', null, leader, engines)),
    ),
    onEvent(type, data) {
      if (type === 'audit' && String(data.kind).startsWith('host.')) refresh('hosts');
      if (type === 'audit' && String(data.kind).startsWith('engine.')) refreshEngines('engines');
    },
  };
}

const GIB = 2 ** 30;

/**
 * The image as the container was created from it (a digest or an image ID shortened to 12 hex
 * characters, full on hover), and the image's own id (short) when known: two builds under one tag differ there.
 */
function imageCell(image, imageId) {
  const id = /^sha256:([0-9a-f]{64})$/.exec(image ?? '');
  if (id) return h('code', { title: image }, id[1].slice(0, 12));
  const at = /^(.+)@(sha256:([0-9a-f]{64}))$/.exec(image ?? '');
  if (at) return h('span', null, h('code', null, at[1]), ' ', h('code', { class: 'muted', title: at[2] }, `@${at[3].slice(0, 12)}`));
  const own = /^sha256:([0-9a-f]{64})$/.exec(imageId ?? '');
  if (image && own) return h('span', null, h('code', null, image), ' ', h('code', { class: 'muted', title: imageId }, own[1].slice(0, 12)));
  return image ? h('code', null, image) : h('span', { class: 'muted' }, '—');
}

const CONTAINER_COLUMNS = [
  { label: 'Stack', cell: (c) => (c.stack ? link(`/stacks/${enc(c.stack)}`, {}, c.stack) : '') },
  { label: 'Service', cell: (c) => h('span', null, c.service, c.job ? h('span', { class: 'muted small' }, ` ${c.job} job`) : null) },
  { label: 'Replica', cell: (c) => `#${c.slot}` },
  { label: 'State', cell: (c) => badge(c.state, { tone: c.state === 'running' ? 'good' : undefined }) },
  { label: 'Health', cell: (c) => badge(c.health) ?? h('span', { class: 'muted', title: 'no health check' }, '—') },
  { label: 'Image', cell: (c) => imageCell(c.image, c.imageId) },
  { label: 'Commit', cell: (c) => (c.commit ? link('/audit', { commit: c.commit }, short(c.commit)) : short(c.commit)) },
  { label: 'Container', cell: (c) => h('span', { title: c.name }, short(c.id, 12)) },
];

function hostFacts(x) {
  const labels = Object.entries(x.labels ?? {});
  return h(
    'dl',
    { class: 'facts' },
    h('dt', null, 'State'),
    h('dd', null, badge(x.state), ' since ', time(x.since), x.since ? ` (${new Date(x.since).toLocaleString()})` : null),
    h('dt', null, 'Endpoint'),
    h('dd', null, h('code', null, x.endpoint || '—')),
    h('dt', null, 'Docker'),
    h('dd', null, x.version ? `${x.version} (API ${x.apiVersion})` : '—'),
    h('dt', null, 'CPUs'),
    h('dd', null, x.cpus ? String(x.cpus) : '—'),
    h('dt', null, 'Memory'),
    h('dd', null, x.memoryBytes ? `${(x.memoryBytes / GIB).toFixed(1)} GiB` : '—'),
    h('dt', null, 'Labels'),
    h('dd', null, labels.length ? labels.map(([k, v]) => h('span', { class: 'chip' }, `${k}=${v}`)) : h('span', { class: 'muted' }, 'none')),
  );
}

async function hostView(_q, name) {
  const body = h('div');
  const draw = (x) =>
    replace(
      body,
      h('p', { class: 'crumbs' }, link('/hosts', {}, 'Hosts'), ' / ', x.name),
      h('h1', null, x.name, ' ', h('span', { class: 'badges' }, badge(x.state))),
      x.error ? notice('error', h('div', { class: 'reason' }, x.error)) : null,
      hostFacts(x),
      section(
        `Containers managed by berth (${x.containers.length})`,
        table(CONTAINER_COLUMNS, x.containers, {
          key: (c) => c.id,
          empty: x.state === 'up' ? 'berth runs no containers here.' : 'Not known while the host does not answer.',
        }),
      ),
    );
  draw(await api(`/hosts/${enc(name)}`));
  const refresh = debouncer(async () => draw(await api(`/hosts/${enc(name)}`)));
  return {
    title: name,
    node: body,
    onEvent(type, data) {
      // a pass that changed a stack may have changed the containers here; a host.* row, its state
      if (type === 'stack' || (type === 'audit' && data.host === name)) refresh('host');
    },
  };
}
