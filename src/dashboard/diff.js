// Unified diffs (as the API gives them) shown coloured, unified or side by side.
/* global localStorage */
import { h, replace } from './dom.js';

/**
 * Splits a unified diff into typed lines: note (berth's `# create web#1 ...` summary and other
 * text), file (--- / +++ / Index / ===), hunk (@@), add, del, ctx, meta (\ No newline ...).
 * add/del/ctx carry their old and new line numbers. Hunk bodies are read by their line counts,
 * so a removed line that starts with "-- " is still a removed line.
 */
export function parseDiff(text) {
  const out = [];
  let left = 0; // lines of the current hunk still to come, old and new side
  let right = 0;
  let oldNo = 0;
  let newNo = 0;
  const lines = String(text ?? '')
    .replace(/\n$/, '')
    .split('\n');
  for (const line of lines) {
    if (left > 0 || right > 0) {
      const c = line[0];
      if (c === '+') {
        out.push({ type: 'add', text: line, newNo: newNo++ });
        right--;
        continue;
      }
      if (c === '-') {
        out.push({ type: 'del', text: line, oldNo: oldNo++ });
        left--;
        continue;
      }
      if (c === ' ' || line === '') {
        out.push({ type: 'ctx', text: line, oldNo: oldNo++, newNo: newNo++ });
        left--;
        right--;
        continue;
      }
      if (c === '\\') {
        out.push({ type: 'meta', text: line });
        continue;
      }
      left = right = 0; // a short hunk: read on as headers
    }
    const hunk = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(line);
    if (hunk) {
      oldNo = Number(hunk[1]);
      newNo = Number(hunk[3]);
      left = hunk[2] === undefined ? 1 : Number(hunk[2]);
      right = hunk[4] === undefined ? 1 : Number(hunk[4]);
      out.push({ type: 'hunk', text: line });
    } else if (/^(--- |\+\+\+ |Index: |diff |=+$)/.test(line)) out.push({ type: 'file', text: line });
    else if (line[0] === '\\') out.push({ type: 'meta', text: line });
    else out.push({ type: 'note', text: line });
  }
  return out;
}

/**
 * Pairs the lines for a side-by-side view: rows of [left, right]. Inside a hunk a run of removed
 * lines faces the run of added lines that follows it; anything else spans both sides (`full`).
 */
export function splitRows(lines) {
  const rows = [];
  let dels = [];
  let adds = [];
  const flush = () => {
    for (let i = 0; i < Math.max(dels.length, adds.length); i++) rows.push({ left: dels[i], right: adds[i] });
    dels = [];
    adds = [];
  };
  for (const l of lines) {
    if (l.type === 'del') {
      if (adds.length) flush();
      dels.push(l);
    } else if (l.type === 'add') adds.push(l);
    else {
      flush();
      if (l.type === 'ctx') rows.push({ left: l, right: l });
      else rows.push({ full: l });
    }
  }
  flush();
  return rows;
}

const num = (n) => h('td', { class: 'num', 'data-n': n ?? '' });

function unifiedTable(lines) {
  return h(
    'table',
    { class: 'diff unified' },
    h(
      'tbody',
      null,
      lines.map((l) => h('tr', { class: l.type }, num(l.oldNo), num(l.newNo), h('td', { class: 'code' }, l.text))),
    ),
  );
}

function splitTable(lines) {
  const side = (l) =>
    l ? [num(l.type === 'add' ? l.newNo : l.oldNo), h('td', { class: `code ${l.type}` }, l.text.slice(1))] : [num(), h('td', { class: 'code blank' })];
  return h(
    'table',
    { class: 'diff split' },
    h(
      'tbody',
      null,
      splitRows(lines).map((r) =>
        r.full ? h('tr', { class: r.full.type }, h('td', { class: 'code', colspan: 4 }, r.full.text)) : h('tr', null, side(r.left), side(r.right)),
      ),
    ),
  );
}

const MODE_KEY = 'berth.diffMode';

/**
 * A diff with its Unified / Side by side toggle (the choice is remembered in this browser).
 * An empty diff says so.
 */
export function diffView(text, { title } = {}) {
  if (!text || !String(text).trim()) return h('p', { class: 'muted' }, 'No changes.');
  const lines = parseDiff(text);
  const body = h('div', { class: 'diff-body' });
  const buttons = {};
  const show = (mode) => {
    localStorage.setItem(MODE_KEY, mode);
    replace(body, mode === 'split' ? splitTable(lines) : unifiedTable(lines));
    for (const [m, b] of Object.entries(buttons)) b.setAttribute('aria-pressed', String(m === mode));
  };
  buttons.unified = h('button', { type: 'button', onclick: () => show('unified') }, 'Unified');
  buttons.split = h('button', { type: 'button', onclick: () => show('split') }, 'Side by side');
  const adds = lines.filter((l) => l.type === 'add').length;
  const dels = lines.filter((l) => l.type === 'del').length;
  const view = h(
    'div',
    { class: 'diff-view' },
    h(
      'div',
      { class: 'diff-bar' },
      title ? h('strong', null, title) : null,
      h('span', { class: 'diff-stat' }, h('span', { class: 'plus' }, `+${adds}`), ' ', h('span', { class: 'minus' }, `−${dels}`)),
      h('span', { class: 'toggle', role: 'group', 'aria-label': 'Diff layout' }, buttons.unified, buttons.split),
    ),
    body,
  );
  show(localStorage.getItem(MODE_KEY) === 'split' ? 'split' : 'unified');
  return view;
}
