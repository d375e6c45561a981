/**
 * The dashboard (docs/api.md, "Dashboard"): the static files of src/dashboard served at `/`, no
 * build step, no CDN. They need no token: the dashboard's API calls carry it.
 */
import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

import { DASHBOARD_DIR } from '../paths.ts';

/**
 * Everything the page loads comes from berth itself: a page that tried to reach a CDN would fail
 * here as it fails offline, and injected markup could run no script.
 */
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** Serves the dashboard: `/` is index.html, the other files under their own names. */
export async function dashboard(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: DASHBOARD_DIR,
    prefix: '/',
    // one route per file found at start, no catch-all: unknown paths stay the server's 404
    wildcard: false,
    index: ['index.html'],
    decorateReply: false,
    setHeaders: (reply) => {
      reply.header('content-security-policy', CSP);
      reply.header('x-content-type-options', 'nosniff');
      reply.header('referrer-policy', 'no-referrer');
    },
  });
}

export default dashboard;
