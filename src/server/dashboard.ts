/**
 * The dashboard (docs/api.md, "Dashboard"): the static files of src/dashboard served at `/`, no
 * build step, no CDN, and /kinds.js, the audit kinds as an ES module made from src/audit/kinds.ts
 * (so that the page's kind filter never needs a copy of its own). They need no token: the
 * dashboard's API calls carry it.
 */
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

import { AUDIT_KINDS } from '../audit/kinds.ts';
import { DASHBOARD_DIR } from '../paths.ts';

/**
 * Everything the page loads comes from berth itself: a page that tried to reach a CDN would fail
 * here as it fails offline, and injected markup could run no script.
 */
const CSP =
  "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** The headers of everything the dashboard serves. */
function secure(reply: FastifyReply): void {
  reply.header('content-security-policy', CSP);
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'no-referrer');
}

/** The body of /kinds.js: a module the dashboard imports like its own files. */
export const KINDS_MODULE = `// The audit kinds berth writes (src/audit/kinds.ts).\nexport const KINDS = ${JSON.stringify(AUDIT_KINDS)};\n`;

/** Serves the dashboard: `/` is index.html, the other files under their own names, and /kinds.js. */
export async function dashboard(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: DASHBOARD_DIR,
    prefix: '/',
    // one route per file found at start, no catch-all: unknown paths stay the server's 404
    wildcard: false,
    index: ['index.html'],
    decorateReply: false,
    setHeaders: secure,
  });
  app.get('/kinds.js', async (_req, reply) => {
    secure(reply);
    reply.header('cache-control', 'no-cache');
    return reply.type('text/javascript; charset=utf-8').send(KINDS_MODULE);
  });
}

export default dashboard;
