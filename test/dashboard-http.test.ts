// The dashboard's files over HTTP (src/server/dashboard.ts), without a browser or a Docker host:
// the plugin alone in a fastify instance, asked with inject().
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_KINDS } from '../src/audit/kinds.ts';
import { dashboard } from '../src/server/dashboard.ts';

const SECURITY_HEADERS = ['content-security-policy', 'x-content-type-options', 'referrer-policy'];

describe('the dashboard over HTTP', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = Fastify();
    await app.register(dashboard);
    await app.ready();
  });

  afterAll(() => app?.close());

  it('serves /kinds.js: an ES module whose KINDS are exactly the audit kinds', async () => {
    const res = await app.inject({ method: 'GET', url: '/kinds.js' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/javascript\b/);
    const module = (await import(`data:text/javascript,${encodeURIComponent(res.body)}`)) as { KINDS: unknown };
    expect(module.KINDS).toEqual([...AUDIT_KINDS]);
  });

  it('/kinds.js carries the same security headers as the static files', async () => {
    const [kinds, page, appJs] = await Promise.all(['/kinds.js', '/', '/app.js'].map((url) => app.inject({ method: 'GET', url })));
    expect(page.statusCode).toBe(200);
    expect(appJs.statusCode).toBe(200);
    for (const h of SECURITY_HEADERS) {
      expect(page.headers[h], h).toBeTruthy();
      expect(kinds.headers[h], h).toBe(page.headers[h]);
      expect(appJs.headers[h], h).toBe(page.headers[h]);
    }
    expect(kinds.headers['content-security-policy']).toContain("script-src 'self'");
  });

  it('the page loads app.js as a module, which takes its kinds from /kinds.js', async () => {
    const page = (await app.inject({ method: 'GET', url: '/' })).body;
    expect(page).toMatch(/<script type="module" src="\/app\.js"><\/script>/);
    const appJs = (await app.inject({ method: 'GET', url: '/app.js' })).body;
    expect(appJs).toMatch(/^import \{ KINDS \} from '\.\/kinds\.js';$/m);
  });

  it('an unknown path is a 404, not a file', async () => {
    expect((await app.inject({ method: 'GET', url: '/nothing.js' })).statusCode).toBe(404);
  });
});
