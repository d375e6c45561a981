// The dashboard in a real browser: Debian's Chromium driven by playwright-core, against
// a berth server in this process (engine on the shared test daemon, a real git server). Two
// commits, the second of which fails its health checks and is rolled back; then the pages are
// read as a viewer and as an operator would. A screenshot of every page (1400x1000 viewport, full
// page) goes to test/artifacts/ (not committed), to be looked at.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryStore } from '../src/audit/deliveries.ts';
import { AUDIT_KINDS } from '../src/audit/kinds.ts';
import type { Engine } from '../src/engine/engine.ts';
import { serveEngine, testEngine, writeConfig } from './harness/berth.ts';
import { removeContainers, testDocker, uniqueName, waitFor } from './harness/docker.ts';
import { startGitServer, type GitServer, type RemoteRepo } from './harness/git-server.ts';
import { IMAGES } from './harness/images.ts';
import { startReceiver, type Receiver } from './harness/receiver.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(import.meta.dirname, 'artifacts');
/** Without Chromium the tests are skipped, except under CI, where they must run (and fail clearly). */
const skip = !existsSync(CHROMIUM) && !process.env.CI;
if (skip) console.warn(`dashboard.test.ts: SKIPPED: ${CHROMIUM} is missing; run scripts/setup.sh as root to install Debian's chromium.`);

const VIEWER_TOKEN = 'viewer-token-0f3a9c51e2d84b7a';
const OPERATOR_TOKEN = 'operator-token-7d1e4b2a9c6f3e80';
/** Markup in a commit message must show as text, never run. */
const EVIL_MESSAGE = 'Break the api <img src=x onerror="window.__xss=1"> on purpose';

interface DiffLine {
  type: string;
  text: string;
  oldNo?: number;
  newNo?: number;
}
/** The dashboard's diff parsing (plain ES module, no DOM needed for these two). */
const { parseDiff, splitRows } = (await import(pathToFileURL(resolve(import.meta.dirname, '../src/dashboard/diff.js')).href)) as {
  parseDiff: (text: string) => DiffLine[];
  splitRows: (lines: DiffLine[]) => Array<{ left?: DiffLine; right?: DiffLine; full?: DiffLine }>;
};

describe('reading unified diffs (src/dashboard/diff.js)', () => {
  const brief = (lines: DiffLine[]) => lines.map((l) => [l.type, l.text, l.oldNo ?? null, l.newNo ?? null]);
  it.each([
    [
      "berth's summary, headers, a hunk",
      '# replace web#1 on test: spec changed\n--- a/s/web\tlive\n+++ b/s/web\tcommit 1\n@@ -1,3 +1,3 @@\n-image: v1\n+image: v2\n env:\n   A: 1\n',
      [
        ['note', '# replace web#1 on test: spec changed', null, null],
        ['file', '--- a/s/web\tlive', null, null],
        ['file', '+++ b/s/web\tcommit 1', null, null],
        ['hunk', '@@ -1,3 +1,3 @@', null, null],
        ['del', '-image: v1', 1, null],
        ['add', '+image: v2', null, 1],
        ['ctx', ' env:', 2, 2],
        ['ctx', '   A: 1', 3, 3],
      ],
    ],
    [
      'a removed line that looks like a header, and a one-line hunk',
      '@@ -7 +7,2 @@\n--- not a header\n++++ nor this\n+x\n--- a/next\n',
      [
        ['hunk', '@@ -7 +7,2 @@', null, null],
        ['del', '--- not a header', 7, null],
        ['add', '++++ nor this', null, 7],
        ['add', '+x', null, 8],
        ['file', '--- a/next', null, null],
      ],
    ],
    [
      'no newline at the end',
      '@@ -1 +1 @@\n-a\n\\ No newline at end of file\n+b\n',
      [
        ['hunk', '@@ -1 +1 @@', null, null],
        ['del', '-a', 1, null],
        ['meta', '\\ No newline at end of file', null, null],
        ['add', '+b', null, 1],
      ],
    ],
    ['nothing', '', [['note', '', null, null]]],
  ])('%s', (_name, text, expected) => {
    expect(brief(parseDiff(text))).toEqual(expected);
  });

  it('pairs each run of removed lines with the added lines after it, side by side', () => {
    const rows = splitRows(parseDiff('@@ -1,4 +1,4 @@\n a\n-b\n-c\n+B\n d\n+e\n'));
    const text = (l?: DiffLine) => l?.text ?? null;
    expect(rows.map((r) => (r.full ? ['full', r.full.text] : [text(r.left), text(r.right)]))).toEqual([
      ['full', '@@ -1,4 +1,4 @@'],
      [' a', ' a'],
      ['-b', '+B'],
      ['-c', null],
      [' d', ' d'],
      [null, '+e'],
    ]);
  });
});

describe.skipIf(skip)(`the dashboard in Chromium${skip ? ` (skipped: ${CHROMIUM} is missing)` : ''}`, () => {
  const docker = testDocker();
  let git: GitServer;
  let repo: RemoteRepo;
  let cfg: ReturnType<typeof writeConfig>;
  let engine: Engine;
  let app: FastifyInstance;
  let base: string;
  let profile: string;
  /** where the engine's notifications (a webhook target, `ops`) go */
  let receiver: Receiver;
  let context: BrowserContext;
  let page: Page;
  /** every URL the pages asked for: all must be berth's own */
  const requested: string[] = [];
  /** uncaught errors in the pages, and live updates that failed */
  const pageErrors: string[] = [];
  const shop = uniqueName('dashshop').replaceAll('-', '');
  const api = uniqueName('dashapi').replaceAll('-', '');
  let first: string;
  let second: string;

  const web = (image: string, rev: string) =>
    `services:\n  web:\n    image: ${image}\n    environment:\n      REV: "${rev}"\n    deploy:\n      update_config: { failure_action: rollback }\n`;
  const row = (name: string) => page.locator(`tr[data-key="${name}"]`);
  /** A full-page screenshot from the top (the sticky header would otherwise sit mid-page). */
  const screenshot = async (file: string) => {
    await page.evaluate('window.scrollTo(0, 0)');
    await page.screenshot({ path: join(ARTIFACTS, file), fullPage: true });
  };
  /**
   * Opens a page of the dashboard by its hash and waits until that page is drawn. A hash change
   * keeps the document, so the page shown before stays a moment: it is marked, and the wait is for
   * an unmarked view with the page no longer busy.
   */
  const open = async (hash: string, on: Page = page) => {
    const url = `${base}/${hash}`;
    if (on.url() === url) await on.reload();
    else {
      await on.evaluate(`document.querySelector('main > *')?.setAttribute('data-old', '')`);
      await on.goto(url);
    }
    await on.locator('main:not([aria-busy]) > :not([data-old]):not(noscript)').waitFor();
  };
  /** Asks for a sync of the shop stack as the operator and waits for its end: its outcome's status. */
  const syncShop = async () => {
    const res = await fetch(`${base}/api/v1/stacks/${shop}/sync`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ wait: true }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { outcome: { status: string } }).outcome.status;
  };
  /** The text of the page as a person reads it: an absent value must never show as "null" or "undefined". */
  const expectNoNullText = async (hash: string) => {
    const text = (await page.evaluate('document.body.innerText')) as string;
    expect(text.match(/\b(null|undefined)\b/g), `${hash} shows ${JSON.stringify(text)}`).toBeNull();
  };

  beforeAll(async () => {
    git = await startGitServer();
    repo = await git.createRepo(uniqueName('dashrepo'));
    receiver = await startReceiver();
    cfg = writeConfig([{ name: repo.name, url: repo.url }], {
      notifications: [{ name: 'ops', type: 'webhook', url: `${receiver.url}/hook` }],
      auth: {
        tokens: [
          { name: 'ops', role: 'operator', tokenFile: 'ops.token' },
          { name: 'eve', role: 'viewer', tokenFile: 'eve.token' },
        ],
      },
    });
    writeFileSync(join(cfg.dir, 'ops.token'), `${OPERATOR_TOKEN}\n`);
    writeFileSync(join(cfg.dir, 'eve.token'), `${VIEWER_TOKEN}\n`);
    engine = testEngine(cfg.file);
    engine.startNotifications();

    first = await repo.commit(
      { [`${shop}/compose.yaml`]: web(IMAGES.webV1, '1'), [`${api}/compose.yaml`]: web(IMAGES.webV1, '1') },
      { message: 'First version of shop and api', author: { name: 'Ada Lovelace', email: 'ada@example.com' } },
    );
    const pass1 = await engine.syncAll({ trigger: 'startup' });
    expect(pass1[0]!.stacks.map((s) => s.status)).toEqual(['synced', 'synced']);
    second = await repo.commit(
      { [`${shop}/compose.yaml`]: web(IMAGES.webV2, '2'), [`${api}/compose.yaml`]: web(IMAGES.webUnhealthy, '2') },
      { message: EVIL_MESSAGE, author: { name: 'Bob Builder', email: 'bob@example.com' } },
    );
    const pass2 = await engine.syncAll({ trigger: 'poll' });
    const outcome = Object.fromEntries(pass2[0]!.stacks.map((s) => [s.stack, s.status]));
    expect(outcome).toEqual({ [shop]: 'synced', [api]: 'rolledback' });

    ({ app, base } = await serveEngine(engine));

    mkdirSync(ARTIFACTS, { recursive: true });
    profile = mkdtempSync(join(tmpdir(), 'berth-chromium-'));
    context = await chromium
      .launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        args: [
          '--headless',
          '--no-sandbox',
          '--disable-gpu',
          '--disable-quic',
          '--no-first-run',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
        ],
        viewport: { width: 1400, height: 1000 },
        colorScheme: 'light',
      })
      .catch((err: Error) => {
        throw new Error(`Could not start Chromium at ${CHROMIUM} (Debian's chromium; scripts/setup.sh installs it): ${err.message}`, { cause: err });
      });
    context.on('request', (r) => requested.push(r.url()));
    context.on('weberror', (e) => pageErrors.push(e.error().message));
    context.on('console', (m) => {
      if (m.type() === 'error' && m.text().includes('live update failed')) pageErrors.push(m.text());
    });
    page = context.pages()[0] ?? (await context.newPage());
  });

  afterAll(async () => {
    await context?.close();
    await app?.close();
    await engine?.drain();
    engine?.close();
    await Promise.all([shop, api].map((s) => removeContainers(docker, { 'berth.stack': s })));
    cfg?.cleanup();
    await git?.close();
    await receiver?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it("asks for the token once, then the overview shows the stacks' real states", async () => {
    await page.goto(`${base}/`);
    await page.getByLabel('API token').fill(VIEWER_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await row(shop).waitFor();
    await expect.poll(() => page.locator('#live').textContent()).toBe('live');

    // what the engine says, and the page says the same
    const [shopState] = await engine.status(shop);
    const [apiState] = await engine.status(api);
    expect(shopState).toMatchObject({ sync: 'Synced', health: 'Healthy', commit: second });
    expect(apiState).toMatchObject({ sync: 'OutOfSync', health: 'Healthy', condition: 'RolledBack', commit: first });

    const shopRow = row(shop);
    expect(await shopRow.locator('td[data-label="Sync"]').textContent()).toBe('Synced');
    expect(await shopRow.locator('td[data-label="Health"]').textContent()).toBe('Healthy');
    const shopCommit = await shopRow.locator('td[data-label="Commit applied"]').innerText();
    expect(shopCommit).toContain(second.slice(0, 7));
    expect(shopCommit).toContain(EVIL_MESSAGE); // as text: the markup did not become an element
    expect(shopCommit).toContain('Bob Builder');
    expect(await shopRow.locator('td[data-label="Hosts"]').textContent()).toContain('test');

    const apiRow = row(api);
    expect(await apiRow.locator('td[data-label="Sync"]').textContent()).toBe('OutOfSync');
    expect(await apiRow.locator('td[data-label="Health"]').textContent()).toBe('Healthy');
    const apiCommit = await apiRow.locator('td[data-label="Commit applied"]').innerText();
    expect(apiCommit).toContain(first.slice(0, 7));
    expect(apiCommit).toContain('First version of shop and api');
    expect(apiCommit).toContain('Ada Lovelace');
    const status = await apiRow.locator('td[data-label="Status"]').innerText();
    expect(status).toContain('RolledBack');
    expect(status).toContain(apiState!.reason!.split('\n')[0]);

    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.evaluate('window.__xss')).toBeUndefined();
    await screenshot('overview.png');
    await page.emulateMedia({ colorScheme: 'dark' });
    await screenshot('overview-dark.png');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  it('is readable on a phone: nothing wider than 375 px', async () => {
    const phone = await context.newPage();
    try {
      await phone.setViewportSize({ width: 375, height: 800 });
      for (const hash of ['#/', `#/stacks/${api}`, `#/audit?commit=${second}`, '#/hosts/test']) {
        await open(hash, phone);
        await phone.locator('main table').first().waitFor();
        expect(await phone.evaluate('document.documentElement.scrollWidth'), hash).toBeLessThanOrEqual(375);
        if (hash === '#/hosts/test') await phone.screenshot({ path: join(ARTIFACTS, 'host-phone.png'), fullPage: true });
      }
      await phone.goto(`${base}/#/`);
      await phone.locator(`tr[data-key="${shop}"]`).waitFor();
      await phone.screenshot({ path: join(ARTIFACTS, 'overview-phone.png'), fullPage: true });
    } finally {
      await phone.close();
    }
  });

  it('opening the failed sync shows its error and its diff', async () => {
    const failed = engine.syncs.list({ stack: api, commit: second }).rows.find((s) => s.outcome === 'failed')!;
    expect(failed.error).toMatch(/rolled back/);
    await page.goto(`${base}/#/`);
    await row(api).getByRole('link', { name: api }).click();
    await page
      .getByRole('heading', { name: new RegExp(api) })
      .first()
      .waitFor();
    // the viewer sees no action buttons
    await page.locator(`li[data-sync-id="${failed.id}"]`).waitFor();
    expect(await page.getByRole('button', { name: 'Sync now' }).count()).toBe(0);
    await page
      .locator(`li[data-sync-id="${failed.id}"]`)
      .getByRole('link', { name: `Sync #${failed.id}` })
      .click();

    await page.waitForURL(`${base}/#/syncs/${failed.id}`);
    expect(await page.locator('main [role="alert"] pre').textContent()).toBe(failed.error);
    // the diff, coloured: each added and removed line of the API's diff in its own coloured row
    const diff = page.locator('section', { has: page.getByRole('heading', { name: 'Diff', exact: true }) }).locator('table.diff');
    const lines = failed.diff!.split('\n');
    const added = lines.filter((l) => l.startsWith('+') && !l.startsWith('+++'));
    const removed = lines.filter((l) => l.startsWith('-') && !l.startsWith('---'));
    expect(added.some((l) => l.includes(IMAGES.webUnhealthy))).toBe(true);
    expect(await diff.locator('tr.add td.code').allTextContents()).toEqual(added);
    expect(await diff.locator('tr.del td.code').allTextContents()).toEqual(removed);
    expect(await diff.locator('tr.hunk').count()).toBeGreaterThan(0);
    await screenshot('sync-failed.png');

    // side by side: the removed image faces the added one
    await page
      .locator('section', { has: page.getByRole('heading', { name: 'Diff', exact: true }) })
      .getByRole('button', { name: 'Side by side' })
      .click();
    const facing = diff.locator('tr', { has: page.locator('td.code.del') }).filter({ has: page.locator('td.code.add') });
    expect(await facing.filter({ hasText: IMAGES.webUnhealthy }).filter({ hasText: IMAGES.webV1 }).count()).toBe(1);
    await screenshot('sync-failed-split.png');
    await page.getByRole('button', { name: 'Unified' }).first().click();
  });

  it("the audit page filtered by commit (in the URL) shows exactly that commit's rows", async () => {
    const expected = engine.audit.query({ commit: second, limit: 1000 }).rows;
    expect(expected.length).toBeGreaterThan(5);
    expect(expected.length).toBeLessThan(100); // one page
    await page.goto(`${base}/#/audit?commit=${second}`);
    // a hash change: the page that was shown may stay a moment before the filtered rows replace it
    await expect
      .poll(() => page.locator('main table.data > tbody > tr').evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute('data-key')))))
      .toEqual(expected.map((r) => r.id));
    expect(await page.locator('main table.data > tbody > tr td[data-label="Commit"]').allInnerTexts()).toEqual(expected.map(() => second.slice(0, 7)));
    await screenshot('audit.png');

    // the kind filter offers every kind berth writes: the list /kinds.js makes from src/audit/kinds.ts
    expect(await page.getByLabel('Kind').getAttribute('list')).toBe('f-kind-list');
    expect(await page.locator('#f-kind-list > option').evaluateAll((os) => os.map((o) => o.getAttribute('value')))).toEqual([...AUDIT_KINDS]);

    // a filter typed in the form goes to the URL, next to the commit
    await page.getByLabel('Kind').fill('sync.failed');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/kind=sync\.failed/);
    expect(new URLSearchParams(new URL(page.url()).hash.split('?')[1]).get('commit')).toBe(second);
    const failedRows = engine.audit.query({ commit: second, kind: 'sync.failed' }).rows;
    expect(failedRows.map((r) => r.stack)).toEqual([api]);
    await expect
      .poll(() => page.locator('main table.data > tbody > tr').evaluateAll((trs) => trs.map((tr) => Number(tr.getAttribute('data-key')))))
      .toEqual(failedRows.map((r) => r.id));
  });

  it('as operator, "Sync now" starts a sync that appears without a reload', async () => {
    await page.getByRole('button', { name: 'Change token' }).click();
    await page.getByLabel('API token').fill(OPERATOR_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#who').getByText('operator').waitFor();
    await page.goto(`${base}/#/stacks/${shop}`);
    const button = page.getByRole('button', { name: 'Sync now' });
    await button.waitFor();
    await expect.poll(() => page.locator('#live').textContent()).toBe('live');
    const before = engine.syncs.latest(repo.name, shop)!.id;
    await page.locator(`li[data-sync-id="${before}"]`).waitFor();
    await page.evaluate('window.__sameDocument = true');

    await button.click();
    const started = await waitFor(
      () => {
        const latest = engine.syncs.latest(repo.name, shop)!;
        return latest.id > before ? latest : undefined;
      },
      { what: 'the sync that Sync now asked for' },
    );
    expect(started).toMatchObject({ trigger: 'manual', actor: 'ops', commitSha: second });
    const item = page.locator(`li[data-sync-id="${started.id}"]`);
    await item.waitFor();
    await expect.poll(() => item.locator('.badge').first().textContent(), { timeout: 60_000 }).toBe('succeeded');
    expect(await page.evaluate('window.__sameDocument')).toBe(true);
    expect(engine.audit.query({ kind: 'api.action', stack: shop }).rows[0]).toMatchObject({ actor: 'ops' });
    await screenshot('stack.png');
  });

  it('the drift view shows a container changed by hand, live against desired, as it happens', async () => {
    await page.goto(`${base}/#/drift`);
    await page.getByRole('heading', { name: 'Drift detected, per container' }).waitFor();
    expect(await page.locator('article.drift').count()).toBe(0);
    await page.evaluate('window.__sameDocument = true');

    const [container] = await docker.listContainers({ filters: { label: [`berth.stack=${shop}`] } });
    await docker.getContainer(container!.Id).stop({ t: 0 });
    await engine.syncRepo(repo.name, { trigger: 'drift' }); // what the Docker events would set going
    const [detected] = engine.audit.query({ kind: 'drift.detected', stack: shop }).rows;
    expect(detected).toMatchObject({ service: 'web', host: 'test', containerBefore: container!.Id });
    const added = detected!.diff!.split('\n').filter((l) => l.startsWith('+') && !l.startsWith('+++'));
    expect(added).toContain('+state: running');

    const card = page.locator(`article.drift[data-key="${shop}|web|test"]`);
    await card.waitFor();
    expect(await card.locator('table.diff tr.add td.code').allTextContents()).toEqual(added);
    await expect.poll(() => card.locator('h3 .badge').textContent()).toBe('corrected');
    expect(await page.evaluate('window.__sameDocument')).toBe(true);
    await screenshot('drift.png');
  });

  it('the webhook deliveries page shows each delivery with its outcome and reason, as it arrives', async () => {
    await page.goto(`${base}/#/deliveries`);
    await page.getByRole('heading', { name: 'Webhook deliveries' }).waitFor();
    const res = await fetch(`${base}/webhooks/generic`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-berth-delivery': 'dashboard-test-1' },
      body: JSON.stringify({ repo: repo.url, branch: 'main', after: second }),
    });
    expect(res.status).toBe(401); // the repo has no webhook secret
    const [delivery] = new DeliveryStore(engine.db).query({ deliveryId: 'dashboard-test-1' }).rows;
    expect(delivery).toMatchObject({ outcome: 'rejected', reason: 'no webhook secret', repo: repo.name });
    const tr = page.locator(`tr[data-key="${delivery!.id}"]`);
    await tr.waitFor(); // no reload: the webhook.rejected audit row brings it
    expect(await tr.locator('td[data-label="Outcome"]').innerText()).toBe('rejected HTTP 401');
    expect(await tr.locator('td[data-label="Reason"]').innerText()).toBe(`${delivery!.reason}\n${delivery!.detail}`);
    await screenshot('deliveries.png');
  });

  it('the notifications page shows each delivery with its outcome, and a failed one with its error, as it happens', async () => {
    await open('#/notifications');
    await page.getByRole('heading', { name: 'Notifications' }).waitFor();
    // the syncs so far were told of: the first commit's two, the second's success and rollback
    const delivered = await waitFor(
      () => {
        const rows = engine.notifier.query({ target: 'ops' }).rows;
        return rows.length >= 4 && rows.every((n) => n.outcome === 'delivered') ? rows : undefined;
      },
      { what: 'the notifications of the syncs so far' },
    );
    const rolledBack = delivered.find((n) => n.event === 'rollout.rolledback' && n.stack === api)!;
    const tr = page.locator(`tr[data-key="${rolledBack.id}"]`);
    await tr.waitFor();
    expect(await tr.locator('td[data-label="Target"]').innerText()).toBe('ops\nwebhook');
    expect(await tr.locator('td[data-label="Outcome"]').innerText()).toBe('delivered HTTP 200');
    expect(await tr.locator('td[data-label="Commit"]').innerText()).toBe(second.slice(0, 7));

    receiver.fail(1, 410);
    await syncShop(); // nothing to change: a sync all the same, and its end is told of
    const failed = await waitFor(() => engine.notifier.query({ target: 'ops', outcome: 'failed' }).rows[0], { what: 'the refused notification' });
    const failedRow = page.locator(`tr[data-key="${failed.id}"]`);
    await failedRow.waitFor(); // no reload: the notification event brings it
    expect(await failedRow.locator('td[data-label="Outcome"]').innerText()).toBe('failed HTTP 410');
    expect(await failedRow.locator('td[data-label="Error"]').innerText()).toBe(failed.error!);
    expect(await failedRow.locator('td[data-label="Event"]').innerText()).toBe('sync.succeeded');
    await screenshot('notifications.png');
  });

  it("a live update highlights a stack's row on the overview only when the stack's status changed", async () => {
    await open('#/');
    await row(shop).waitFor();
    await expect.poll(() => page.locator('#live').textContent()).toBe('live');
    // What the live updates do to the page, counted as it happens: the summary cards redrawn (each
    // stack event redraws them, so they show that an update was handled), rows put in, rows highlighted.
    await page.evaluate(`(() => {
      const seen = window.__seen = { cards: 0, added: {}, highlighted: {} };
      const count = (what, key) => { seen[what][key] = (seen[what][key] ?? 0) + 1; };
      new MutationObserver((records) => {
        for (const r of records) {
          if (r.type === 'childList' && r.target.matches('.summary')) seen.cards++;
          if (r.type === 'childList') for (const n of r.addedNodes) if (n.nodeName === 'TR' && n.dataset.key) count('added', n.dataset.key);
          if (r.type === 'attributes' && r.target.nodeName === 'TR' && r.target.classList.contains('highlight') && !String(r.oldValue).includes('highlight')) count('highlighted', r.target.dataset.key);
        }
      }).observe(document.querySelector('main'), { childList: true, subtree: true, attributes: true, attributeFilter: ['class'], attributeOldValue: true });
    })()`);
    type Seen = { cards: number; added: Record<string, number>; highlighted: Record<string, number> };
    const seen = async () => (await page.evaluate('window.__seen')) as Seen;

    // a sync that finds nothing to do: its update reaches the page, and the row stays as it is
    expect(await syncShop()).toBe('unchanged');
    await expect.poll(async () => (await seen()).cards).toBeGreaterThan(0);
    const before = await seen();
    expect([before.added[shop], before.highlighted[shop], before.highlighted[api]]).toEqual([undefined, undefined, undefined]);
    expect(await row(shop).getAttribute('class')).toBeNull();

    // a new commit applied: the row shows it, highlighted, and the highlight fades out
    const third = await repo.commit(
      { [`${shop}/compose.yaml`]: web(IMAGES.webV2, '3') },
      { message: 'Third version of shop', author: { name: 'Ada Lovelace', email: 'ada@example.com' } },
    );
    expect(await syncShop()).toBe('synced');
    await expect.poll(() => row(shop).locator('td[data-label="Commit applied"]').innerText()).toContain(third.slice(0, 7));
    const after = await seen();
    // highlighted at each change of its status (the stream tells those during the rollout too); the other row never
    expect(after.highlighted[shop]).toBeGreaterThanOrEqual(1);
    expect(after.added[shop]).toBeGreaterThanOrEqual(after.highlighted[shop]!);
    expect(after.highlighted[api]).toBeUndefined();
    await expect.poll(() => row(shop).evaluate((tr) => tr.classList.contains('highlight')), { timeout: 5000 }).toBe(false);
    expect(pageErrors).toEqual([]);
  });

  it("GET /api/v1/hosts/:name answers a host's status and its berth-managed containers; an unknown host is 404", async () => {
    const get = (path: string) => fetch(`${base}/api/v1${path}`, { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } });
    const res = await get('/hosts/test');
    expect(res.status).toBe(200);
    const host = (await res.json()) as { name: string; state: string; version?: string; containers: Array<Record<string, unknown>> };
    expect(host).toMatchObject({ name: 'test', state: 'up', version: expect.any(String) });
    for (const stack of [shop, api]) {
      const [c] = await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
      expect(host.containers.filter((x) => x.stack === stack)).toEqual([
        expect.objectContaining({ id: c!.Id, stack, service: 'web', slot: 1, state: 'running', health: 'healthy', image: c!.Image, imageId: c!.ImageID }),
      ]);
    }

    const unknown = await get('/hosts/nowhere');
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error: string }).error).toMatch(/nowhere/);
    expect((await fetch(`${base}/api/v1/hosts/test`)).status).toBe(401);
  });

  it("the hosts page lists the hosts; a host's page shows its facts and the test stacks' containers on it", async () => {
    await open('#/hosts');
    const hostRow = row('test');
    expect(await hostRow.locator('td[data-label="State"]').innerText()).toMatch(/^up/);
    expect(Number(await hostRow.locator('td[data-label="Containers"]').innerText())).toBeGreaterThanOrEqual(2);
    await screenshot('hosts.png');

    await hostRow.getByRole('link', { name: 'test' }).click();
    await page.waitForURL(`${base}/#/hosts/test`);
    await page.getByRole('heading', { name: /^test/, level: 1 }).waitFor();
    const facts = await page.locator('main dl.facts').innerText();
    const [status] = engine.monitor.status();
    for (const fact of ['State', 'Endpoint', 'Docker', 'CPUs', 'Memory', 'Labels']) expect(facts).toContain(fact);
    expect(facts).toContain(status!.endpoint);
    expect(facts).toContain(status!.version!);

    // the other test files share this daemon: only the rows of this file's stacks are checked
    for (const [stack, image] of [
      [shop, IMAGES.webV2],
      [api, IMAGES.webV1],
    ] as const) {
      const [c] = await docker.listContainers({ all: true, filters: { label: [`berth.stack=${stack}`] } });
      const tr = page.locator(`tr[data-key="${c!.Id}"]`);
      await tr.waitFor();
      const cell = (label: string) => tr.locator(`td[data-label="${label}"]`).innerText();
      expect(await cell('Stack')).toBe(stack);
      expect(await cell('Service')).toBe('web');
      expect(await cell('Replica')).toBe('#1');
      expect(await cell('State')).toBe('running');
      expect(await cell('Health')).toBe('healthy');
      expect(await cell('Image')).toBe(`${image} ${c!.ImageID.slice('sha256:'.length, 'sha256:'.length + 12)}`); // the tag, and which image it was
      expect(await cell('Container')).toBe(c!.Id.slice(0, 12));
    }
    await screenshot('host.png');
  });

  it('every page opens, with no error on it or in it, and none shows "null" or "undefined"', async () => {
    for (const hash of [
      '#/syncs',
      `#/syncs?stack=${api}`,
      '#/hosts',
      '#/drift',
      '#/deliveries?provider=generic',
      '#/notifications',
      '#/notifications?outcome=failed',
      '#/audit?kind=api.action',
      '#/nowhere',
    ]) {
      await open(hash);
      const alert = await page.locator('main [role="alert"]').allInnerTexts();
      expect(alert, hash).toEqual(hash === '#/nowhere' ? ['There is no page /nowhere.'] : []);
      await expectNoNullText(hash);
    }
    await open('#/hosts');
    expect(await page.locator('tr[data-key="test"] td[data-label="State"]').innerText()).toMatch(/^up/);

    // and the pages that show the most optional fields: a sync that succeeded (no error) and one
    // that failed, the overview, a stack, a host, and a host berth does not know
    const succeeded = engine.syncs.list({ stack: shop }).rows.find((s) => s.outcome === 'succeeded')!;
    const failed = engine.syncs.list({ stack: api }).rows.find((s) => s.outcome === 'failed')!;
    for (const hash of ['#/', `#/stacks/${shop}`, `#/stacks/${api}`, `#/syncs/${succeeded.id}`, `#/syncs/${failed.id}`, '#/hosts/test', '#/hosts/nowhere']) {
      await open(hash);
      await expectNoNullText(hash);
      if (hash === `#/syncs/${succeeded.id}`) {
        expect(await page.locator('main [role="alert"]').count()).toBe(0);
        expect(await page.locator('main dl.facts').innerText()).toMatch(/^Commit\s/);
        await screenshot('sync-succeeded.png');
      }
    }
    expect(await page.locator('main [role="alert"]').innerText()).toMatch(/no host named nowhere/);
    expect(pageErrors).toEqual([]);
  });

  it('loaded nothing from anywhere but berth itself', () => {
    expect(requested.length).toBeGreaterThan(10);
    expect(requested.filter((u) => !u.startsWith(`${base}/`) && !u.startsWith('data:'))).toEqual([]);
  });
});
