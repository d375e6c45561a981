/**
 * The `berth` command (commander). Commands print results on stdout and logs on stderr.
 * Exit codes: 0 fine, 1 the thing checked failed (invalid manifests, a failed sync, a broken audit
 * chain or a checkpoint that does not hold, differences found by `diff`, a host that is not up for `hosts`, an action refused, by
 * the server or here: an unknown stack, nothing to resume or roll back, `init` with a key already there), 2 berth could not do its job (bad config, a key
 * file it cannot use, unreachable repo or server, a token refused, not an audit bundle; for `diff`, any error: an invalid stack, a host that does not answer).
 * sync, rollback, pause, resume, status, hosts, audit, plan and logs are operations (src/engine/ops.ts): with
 * BERTH_URL set, those of that running berth (its API, with BERTH_TOKEN), else of an engine in this
 * process acting on the hosts and the database itself.
 */
import { once } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { userInfo } from 'node:os';
import { Command, Option } from 'commander';
import { ConfigError, loadConfig as loadConfigFile, resolveConfig, type BerthConfig } from '../config.ts';
import type { Logger } from 'pino';
import { createLogger, type LogFormat } from '../log.ts';
import { renderSnapshot, formatError, MANIFEST, projectName, stackSource } from '../render/index.ts';
import type { RenderResult, Snapshot } from '../model.ts';
import { Engine, EngineError, type RepoPass } from '../engine/engine.ts';
import { startPolling } from '../engine/poller.ts';
import { seedExamplesRepo } from '../source/seed.ts';
import { EXAMPLES_DIR, ROOT } from '../paths.ts';
import { openDatabase } from '../audit/db.ts';
import { openStore } from '../audit/store.ts';
import { openPostgres, safeUrl } from '../audit/pg.ts';
import { migrateStore, MigrateError } from '../audit/migrate.ts';
import { AuditLog } from '../audit/log.ts';
import { formatAuditTable } from '../audit/format.ts';
import { generateAuditKey, loadAuditSigner, loadPublicKey, type TrustedKey } from '../audit/anchor.ts';
import { CHECKPOINT_RULE } from '../audit/checkpoint.ts';
import { readAnchorFile, verifyBundle, verifyLog, writeBundle, type Verification } from '../audit/proof.ts';
import { buildServer, parseListen } from '../server/server.ts';
import { checkListen } from '../server/auth.ts';
import { handoffRunner, LocalOps, type Operations, type StackStats, type SyncReport } from '../engine/ops.ts';
import type { AuditRow } from '../audit/log.ts';
import { formatHostsTable } from './hosts.ts';
import { formatReplicasTable, formatStatsTable, formatStatusTable } from './status.ts';
import { invocation } from './invocation.ts';
import { ApiError, apiFromEnv } from './client.ts';
import { RemoteOps } from './remote.ts';
import { printable } from './text.ts';
import { evidenceLines, followProgress } from './progress.ts';
import { planText } from '../diff/report.ts';
import { logPrinter, useColour } from './logs.ts';
import { LOG_TAIL } from '../engine/log-lines.ts';
import { repoNameOf, starterConfig } from './init.ts';

/** Who asked, in the audit log, when the CLI acts without a server: `cli:<user>` (or $BERTH_ACTOR). */
const CLI_ACTOR = process.env.BERTH_ACTOR ?? `cli:${userInfo().username}`;

/** Sync outcomes that make `sync` exit 1. */
const BAD_OUTCOMES = new Set(['failed', 'invalid', 'paused', 'rolledback']);

/** An error that ends the command with a message and an exit code, without a stack trace. */
class Exit extends Error {
  readonly code: number;
  constructor(message: string, code: number) {
    super(message);
    this.code = code;
  }
}

const program = new Command('berth')
  .description('GitOps for plain Docker hosts: Compose files in Git, converged on your hosts.')
  .version((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version)
  .addOption(new Option('-c, --config <file>', 'engine config (default: $BERTH_CONFIG, ./berth.config.yaml, else the embedded default)'))
  .addOption(
    new Option('--log-format <format>', 'logs on stderr: readable lines (default on a terminal) or JSON lines (default otherwise)').choices(['pretty', 'json']),
  )
  .option('-q, --quiet', 'log errors only')
  .option('-v, --verbose', 'log debug lines too')
  .showHelpAfterError();

interface GlobalOptions {
  config?: string;
  logFormat?: LogFormat;
  quiet?: boolean;
  verbose?: boolean;
}

/** The logger of a command: `level` unless --quiet, --verbose or $BERTH_LOG_LEVEL says otherwise. */
function logger(level: string): Logger {
  const o = program.opts<GlobalOptions>();
  return createLogger({ level: o.verbose ? 'debug' : o.quiet ? 'error' : (process.env.BERTH_LOG_LEVEL ?? level), format: o.logFormat });
}

/** A berth command line to paste, as this one was run (npm or not, the same --config). */
const hint = (args: string[]) => invocation(args, { config: program.opts<GlobalOptions>().config });

program
  .command('validate')
  .description(
    'check a checkout offline: a repo (berth.yaml, or a stack per folder) or a single stack (a folder with a Compose file); errors as file:line:col: message',
  )
  .argument('[dir]', 'the folder holding berth.yaml, the stacks, or the Compose file of one stack', '.')
  .option(
    '--repo <name>',
    "check against this repo's policy in the engine config, and name a stack without name: after it (default: the strict policy, nothing beyond an ordinary container; the folder's name)",
  )
  .action((dir: string, opts: { repo?: string }) => {
    const snapshot = readFolder(dir, opts.repo);
    const result = renderSnapshot(snapshot, { policy: opts.repo === undefined ? undefined : repoPolicy(opts.repo) });
    console.log(printable(whatValidated(snapshot, result, opts.repo !== undefined)));
    const errors = [...result.errors, ...result.stacks.flatMap((s) => (s.ok ? [] : s.errors))];
    for (const e of errors) console.log(printable(formatError(e)));
    if (errors.length > 0) throw new Exit(`${errors.length} error(s)`, 1);
    const services = result.stacks.reduce((n, s) => n + (s.ok ? s.stack.services.length : 0), 0);
    console.log(`ok: ${result.stacks.length} stack(s), ${services} service(s)`);
  });

/**
 * What `validate` took the folder for: a repo with berth.yaml, a single stack (a Compose file at
 * its root, docs/manifests.md "Which stacks"), or a repo of stack folders; with the stacks' names.
 */
function whatValidated(snapshot: Snapshot, result: RenderResult, repoGiven: boolean): string {
  const source = stackSource(snapshot.files);
  const names = result.stacks.map((s) => s.def.name);
  const list = names.length ? `: ${names.join(', ')}` : '';
  if (source.kind === 'manifest') return `a repo with ${source.file}: ${names.length} stack(s)${list}`;
  if (source.kind === 'folders') return `a repo of stack folders (no ${MANIFEST}): ${names.length} stack(s)${list}`;
  const project = projectName(source.file, snapshot.files);
  const unnamed = 'name' in project && project.name === undefined && names.length > 0;
  const why = !unnamed
    ? ''
    : repoGiven
      ? ` (no name: in ${source.file}: named after the repo)`
      : ` (no name: in ${source.file}: named after the folder here, after the repo by berth serve)`;
  return `a single stack (${source.file})${list}${why}`;
}

program
  .command('diff')
  .description(
    'the plan against the live hosts, as a unified diff; changes nothing (exit 0 in sync, 1 differences, 2 errors: an invalid stack, a host that does not answer, a bad config)',
  )
  .option('-s, --stack <name>', 'only this stack')
  .action(async (opts: { stack?: string }) => {
    const passes = await withEngine((engine) => engine.syncAll({ trigger: 'manual', actor: CLI_ACTOR, stack: opts.stack, dryRun: true }), 'warn');
    let differs = false;
    let errors = false;
    for (const pass of passes) {
      console.log(passHeader(pass));
      for (const host of pass.unreachable ?? []) console.log(`# host ${host} does not answer: what runs there is unknown`);
      errors ||= (pass.unreachable?.length ?? 0) > 0;
      for (const s of pass.stacks) {
        if (s.status === 'planned') {
          differs = true;
          console.log(printable(s.diff ?? ''));
        } else if (s.status === 'unchanged') console.log(`# ${s.stack}: in sync`);
        else {
          errors = true;
          console.log(`# ${s.stack}: ${s.status}\n${indent(s.errors ?? [])}`);
        }
      }
    }
    failOnErrors(passes, 2);
    if (errors) throw new Exit('', 2);
    if (differs) throw new Exit('', 1);
  });

program
  .command('sync')
  .description('one reconciliation pass now: fetch, render, diff and apply (with BERTH_URL: asks that berth to sync)')
  .option('-s, --stack <name>', 'only this stack')
  .option(
    '--wait',
    'end once every replica the sync changed runs and, with a health check, is healthy (or the rollout failed, saying why and what the failing container showed), printing each replica step as it goes; with BERTH_URL, without it, the server syncs in the background',
  )
  .option('--json', 'JSON lines on stdout: with --wait one object per replica step as it happens; then one object with the result')
  .action(async (opts: { stack?: string; wait?: boolean; json?: boolean }) => {
    const wait = Boolean(opts.wait);
    const reports = await withOps(
      (ops) =>
        watched(ops, { wait, json: opts.json, stacks: opts.stack ? [opts.stack] : undefined }, () =>
          ops.syncAll({ actor: CLI_ACTOR, stack: opts.stack, wait }),
        ),
      drawsProgress(wait, opts.json) ? 'warn' : 'info',
    );
    if (opts.json) console.log(JSON.stringify({ type: 'result', reports }));
    else for (const report of reports) printSync(report, opts.wait);
    const broken = reports.filter((r) => r.error);
    // a repo that cannot be read: berth could not do its job (2); a broken berth.yaml: the thing synced failed (1)
    if (broken.length) throw new Exit(broken.map((r) => `repo ${r.repo}: ${r.error}`).join('\n'), broken.some((r) => !r.commit) ? 2 : 1);
    if (reports.some((r) => r.stacks.some((s) => BAD_OUTCOMES.has(s.status)))) throw new Exit('', 1);
  });

program
  .command('plan')
  .description(
    "what a branch, a ref (refs/pull/7/head) or a commit would do to the hosts, as a pull request's plan says it: per stack what is created, replaced and removed where, the rollout order, the diff; changes nothing, moves no branch (exit 0 it would apply, 1 it would not)",
  )
  .requiredOption('--ref <ref>', 'a branch, a ref (refs/pull/7/head, refs/merge-requests/7/head) or a commit SHA')
  .option('--repo <name>', 'the repo, by its name in the engine config (default: the only one)')
  .option('--json', 'the plan as JSON (as POST /api/v1/repos/:repo/plan answers it)')
  .action(async (opts: { ref: string; repo?: string; json?: boolean }) => {
    const plan = await withOps(async (ops) => ops.plan(opts.repo ?? (await onlyRepo(ops)), opts.ref), 'warn');
    console.log(opts.json ? JSON.stringify(plan, null, 2) : printable(planText(plan)));
    if (plan.verdict !== 'success') throw new Exit('', 1);
  });

/** The repo a command means when none is named: the only one (with BERTH_URL: the only one whose stacks the server lists). */
async function onlyRepo(ops: Operations): Promise<string> {
  const names = ops instanceof RemoteOps ? [...new Set((await ops.stacks()).map((s) => s.repo))] : (await loadConfig()).repos.map((r) => r.name);
  if (names.length === 1) return names[0]!;
  throw new Exit(`name the repo with --repo: ${names.length ? `one of ${names.join(', ')}` : 'no repo is known'}`, 2);
}

program
  .command('serve')
  .description('run the engine: a pass at start, then every repo on its poll schedule; HTTP on `listen`')
  .action(async () => {
    // Listened for from the start: a SIGTERM (`docker stop`) during the first pass ends serve once
    // that pass is done, instead of Node's default (killed at once; ignored as a container's PID 1).
    const stopSignal = new Promise<NodeJS.Signals>((done) => {
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => done(sig));
    });
    const config = await loadConfig();
    checkListen(config);
    const log = logger('info');
    const engine = new Engine(config, log);
    let ready = false;
    const app = buildServer({ ready: () => ready, engine }, log);
    const { host, port } = parseListen(config.listen);
    await app.listen({ host, port });
    log.info(
      { config: config.source, hosts: config.hosts.map((h) => h.name), repos: config.repos.map((r) => r.name) },
      `berth serving on http://${config.listen}`,
    );
    if (config.source === '(embedded default)') {
      log.info(`embedded default: edit the Compose files in ${config.repos[0].url}, commit there, and berth converges within ${config.repos[0].poll}`);
    }
    engine.startMonitor(() => void engine.syncAll({ trigger: 'drift' }));
    const stopWatching = engine.watchDrift({ resyncMs: config.resyncMs });
    const stopSchedules = engine.startSchedules();
    const stopImages = engine.watchImages(config.imagePollMs);
    // the notifications, and among several engines on PostgreSQL the election and the hand-overs (stopped after the last pass)
    const stopCluster = engine.startCluster(handoffRunner(engine));
    const signalled = await Promise.race([engine.syncAll({ trigger: 'startup' }).then(() => undefined), stopSignal]);
    ready = true;
    const stop = signalled ? () => undefined : startPolling(config.repos, (repo) => engine.syncRepo(repo, { trigger: 'poll' }), log);
    const signal = signalled ?? (await stopSignal);
    log.info({ signal }, 'stopping');
    stop();
    stopWatching();
    stopSchedules();
    stopImages();
    await app.close();
    await engine.drain();
    stopCluster();
    engine.close();
  });

program
  .command('hosts')
  .description('check every configured host once: state, Docker version, CPUs, memory, berth-managed containers (exit 1 when any host is not up)')
  .option('--json', 'the statuses as JSON, with the container counts')
  .action(async (opts: { json?: boolean }) => {
    const reports = await withOps((ops) => ops.hosts(), 'warn');
    console.log(opts.json ? JSON.stringify(reports, null, 2) : formatHostsTable(reports));
    const down = reports.filter((r) => r.state !== 'up');
    if (down.length) throw new Exit(`${down.length} of ${reports.length} host(s) not up: ${down.map((r) => `${r.name} ${r.state}`).join(', ')}`, 1);
  });

program
  .command('status')
  .description('each stack: Synced/OutOfSync/Unknown, its health, the commit applied, how its last rollout ended, its replicas')
  .option('-s, --stack <name>', 'only this stack')
  .option('--json', 'JSON, with every replica')
  .option('--stats', "one sample of each replica's CPU, memory, network and block I/O, asked of the hosts now")
  .action(async (opts: { stack?: string; json?: boolean; stats?: boolean }) => {
    const { states, stats } = await withOps(async (ops) => {
      const states = opts.stack ? [await ops.stack(opts.stack)] : await ops.stacks();
      if (!opts.stats) return { states };
      // one stack after the other: each asks every host of the stack, a replica per request
      const stats: StackStats[] = [];
      for (const s of states) stats.push(await ops.stats(s.name, s));
      return { states, stats };
    }, 'warn');
    if (opts.json) console.log(JSON.stringify(stats ? states.map((s, i) => ({ ...s, stats: stats[i] })) : states, null, 2));
    else if (stats) console.log([formatStatusTable(states), ...stats.map((s) => `\n${s.stack}:\n${formatStatsTable(s)}`)].join('\n'));
    else console.log([formatStatusTable(states), ...(opts.stack ? states.map((s) => `\n${formatReplicasTable(s)}`) : [])].join('\n'));
  });

program
  .command('rollback')
  .description('apply STACK as it was at an earlier commit and hold it there (auto-sync paused) until `resume` or a new commit')
  .argument('<stack>')
  .option('--to <commit>', 'the commit (default: the one before the commit last applied)')
  .option('--wait', 'print each replica step as the rollback goes (it ends, with or without, once the replicas it changed run and are healthy)')
  .option('--json', 'JSON lines on stdout: with --wait one object per replica step as it happens; then one object with the result')
  .action(async (stack: string, opts: { to?: string; wait?: boolean; json?: boolean }) => {
    const wait = Boolean(opts.wait);
    const outcome = (await withOps(
      (ops) => watched(ops, { wait, json: opts.json, stacks: [stack] }, () => ops.rollback(stack, { to: opts.to, actor: CLI_ACTOR, wait: true })),
      drawsProgress(wait, opts.json) ? 'warn' : 'info',
    ))!;
    if (opts.json) {
      console.log(JSON.stringify({ type: 'result', outcome }));
      if (outcome.status !== 'synced' && outcome.status !== 'unchanged') throw new Exit('', 1);
      return;
    }
    if (outcome.commit) console.log(printable(`${stack}: ${outcome.status} at ${outcome.commit.sha.slice(0, 7)} ${outcome.commit.message.split('\n')[0]}`));
    if (outcome.errors) console.log(indent(outcome.errors));
    if (outcome.evidence) console.log(indent(evidenceLines(outcome.evidence)));
    if (outcome.status !== 'synced' && outcome.status !== 'unchanged') throw new Exit('', 1);
    console.log(`held there: automatic syncs leave ${stack} alone until a new commit, or: ${hint(['resume', stack])}`);
  });

program
  .command('pause')
  .description('stop automatic syncs of STACK until `resume` or a new commit')
  .argument('<stack>')
  .action(async (stack: string) => {
    await withOps((ops) => ops.pause(stack, CLI_ACTOR), 'warn');
    console.log(`${stack}: paused`);
  });

program
  .command('resume')
  .description('end a pause or a rollback hold of STACK: the next pass applies the branch head')
  .argument('<stack>')
  .action(async (stack: string) => {
    // nothing to resume is refused (not-held): exit 1
    await withOps((ops) => ops.resume(stack, CLI_ACTOR), 'warn');
    console.log(`${stack}: resumed`);
  });

const audit = program
  .command('audit')
  .description('the audit log, newest first')
  .option('-s, --stack <name>', 'only this stack')
  .option('--commit <sha>', 'only this commit (a prefix of 4+ characters works)')
  .option('--since <time>', 'only rows since a time (ISO) or that long ago (30m, 2h, 7d)')
  .option('--limit <n>', 'at most this many rows', '100')
  .option('--json', 'JSON lines, with every field (diffs included)')
  .action(async (opts: { stack?: string; commit?: string; since?: string; limit: string; json?: boolean }) => {
    const { rows } = await withOps((ops) => ops.audit({ stack: opts.stack, commit: opts.commit, since: opts.since, limit: Number(opts.limit) }), 'warn');
    printAudit(rows, opts.json);
  });

program
  .command('logs')
  .description(
    "the lines a stack's containers wrote (its replicas on every host, its jobs' and hooks' last runs), each prefixed service.replica@host, like docker compose logs (with BERTH_URL: through that berth)",
  )
  .argument('<stack>')
  .argument('[service]', 'only this service, job or hook')
  .option('--host <name>', 'only the containers on this host')
  .option('-n, --tail <lines>', `the last lines of each container (0 to ${LOG_TAIL.max})`, String(LOG_TAIL.default))
  .option('--since <time>', 'only lines since a time (RFC 3339, ISO) or that long ago (10m, 1h, 7d)')
  .option('-f, --follow', 'keep printing the lines as they are written, until Ctrl-C (or every container stopped)')
  .option('-t, --timestamps', 'each line with the time Docker stamped on it; the lines of all containers in time order')
  .action(async (stack: string, service: string | undefined, opts: { host?: string; tail: string; since?: string; follow?: boolean; timestamps?: boolean }) => {
    if (!/^\d+$/.test(opts.tail)) throw new EngineError(`--tail: '${opts.tail}' is not a whole number from 0 to ${LOG_TAIL.max}`, 'invalid-request');
    const query = { service, host: opts.host, since: opts.since, tail: Number(opts.tail), follow: opts.follow, timestamps: opts.timestamps };
    await withOps(async (ops) => {
      const { replicas, records } = await ops.logs(stack, query);
      const print = logPrinter(replicas, { colour: useColour(process.stdout.isTTY), terminal: Boolean(process.stdout.isTTY) });
      let stopped = false;
      const stop = () => {
        stopped = true;
        records.destroy();
      };
      // Ctrl-C ends a follow as it should end: the streams closed, exit 0; so does a reader that went (| head)
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      process.stdout.once('error', stop);
      try {
        for await (const record of records) {
          const p = print(record);
          if ('err' in p) process.stderr.write(p.err);
          else if (!process.stdout.write(p.out)) await once(process.stdout, 'drain');
        }
      } catch (err) {
        if (!stopped) throw err;
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        process.stdout.off('error', stop);
      }
    }, 'warn');
  });

/** A sync's report: the repo and its commit, then a line per stack (what it changed, or why it failed, and what to run next). */
function printSync(report: SyncReport, wait?: boolean): void {
  if (report.repo) console.log(passHeader(report));
  for (const s of report.stacks) {
    if (s.status === 'started') {
      console.log(`  ${s.stack}: sync started in the background`);
      continue;
    }
    const synced = s.status === 'synced';
    const details = [
      synced && s.changes !== undefined ? `${s.changes} container change(s)` : '',
      synced && wait ? 'running and healthy' : '',
      s.syncId !== undefined ? `sync ${s.syncId}` : '',
    ].filter(Boolean);
    console.log(`  ${s.stack}: ${s.status}${details.length ? ` (${details.join(', ')})` : ''}`);
    if (s.errors) console.log(indent(s.errors, '    '));
    if (s.evidence) console.log(indent(evidenceLines(s.evidence), '    '));
    if (s.hint) console.log(`    then: ${hint(s.hint)}`);
  }
}

function printAudit(rows: AuditRow[], json?: boolean): void {
  if (json) for (const r of rows) console.log(JSON.stringify(r));
  else console.log(rows.length ? formatAuditTable(rows) : 'no audit rows match');
}

audit
  .command('verify')
  .description(
    'check the hash chain (no row edited or removed) and every signed checkpoint against the public key (no row rewritten since it was anchored); exit 1 naming what does not hold. Reads the local database, even with BERTH_URL, or a bundle of `audit export`',
  )
  .option(
    '--public-key <file>',
    "check checkpoints against this public key (PEM) instead of auditKeyFile's; repeat it for the keys of earlier checkpoints",
    collect,
    [],
  )
  .option(
    '--bundle <file>',
    'check a bundle made by `berth audit export` instead of the database: needs no config (without --public-key, only against its own key)',
  )
  .action(async (opts: { publicKey: string[]; bundle?: string }) => {
    const pinned = opts.publicKey.map(loadPublicKey);
    if (opts.bundle !== undefined) return verifyBundleFile(opts.bundle, pinned);
    const config = await loadConfig();
    const trusted = pinned.length ? pinned : config.auditKeyFile ? [loadAuditSigner(config.auditKeyFile).trusted] : [];
    // the anchor file first: each of its lines names a row written before it
    const fromFile = config.auditAnchorFile ? readAnchorFile(config.auditAnchorFile) : [];
    const result = verifyLog(openAudit(config), trusted, fromFile);
    report(result, pinned.length ? 'the --public-key' : trusted.length ? 'auditKeyFile' : undefined, { fromFile: fromFile.length });
  });

audit
  .command('export')
  .description(
    'write the whole audit log, its checkpoints (of the log and the anchor file) and the public key as a JSON bundle that `berth audit verify --bundle` checks elsewhere; reads the local database',
  )
  .requiredOption('--out <file>', 'the bundle to write (replaced when it exists)')
  .action(async (opts: { out: string }) => {
    const config = await loadConfig();
    const signer = config.auditKeyFile ? loadAuditSigner(config.auditKeyFile) : undefined;
    const anchorFile = config.auditAnchorFile ? readAnchorFile(config.auditAnchorFile) : [];
    const key = signer && { publicPem: signer.publicPem(), keyId: signer.keyId };
    let wrote: ReturnType<typeof writeBundle>;
    try {
      wrote = writeBundle(openAudit(config), opts.out, { key, anchorFile });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === undefined) throw err;
      throw new Exit(`cannot write the bundle ${opts.out}: ${code}`, 2);
    }
    const from = wrote.fromAnchorFile ? ` (${wrote.fromAnchorFile} from the anchor file)` : '';
    console.log(
      `wrote ${opts.out}: ${wrote.rows} row(s), ${wrote.checkpoints} checkpoint(s)${from}, ${key ? `public key ${key.keyId}` : 'no public key (no auditKeyFile)'}`,
    );
  });

program
  .command('migrate')
  .description(
    "move an engine's history (the audit log, syncs, holds, webhook deliveries, pins, back-offs, placements, notifications) from its SQLite file to an empty PostgreSQL database, the audit chain checked before and after; stop berth first, then point its config's database: at the target",
  )
  .requiredOption('--from <sqlite:file>', 'the SQLite database: sqlite:./data/berth.db')
  .requiredOption('--to <url>', 'the PostgreSQL database: postgres://user@host:5432/name')
  .option('--password-file <file>', "the PostgreSQL user's password (else $PGPASSWORD, or none)")
  .action((opts: { from: string; to: string; passwordFile?: string }) => {
    const file = opts.from.replace(/^sqlite:/, '');
    if (!existsSync(file)) throw new Exit(`--from: ${file} does not exist (give the engine's database: sqlite:<dataDir>/berth.db)`, 2);
    if (!/^postgres(ql)?:\/\//.test(opts.to)) throw new Exit(`--to: give a postgres:// URL, not ${safeUrl(opts.to)}`, 2);
    let password = process.env.PGPASSWORD;
    if (opts.passwordFile !== undefined) {
      try {
        password = readFileSync(opts.passwordFile, 'utf8').trim();
      } catch (err) {
        throw new Exit(`--password-file: cannot read ${opts.passwordFile}: ${(err as NodeJS.ErrnoException).code}`, 2);
      }
    }
    const from = openDatabase(file);
    const to = openPostgres({ url: opts.to, ...(password !== undefined ? { password } : {}), timeoutMs: 60_000 });
    try {
      const { copied, verified } = migrateStore(from, to, (table, rows) => console.log(`${table}: ${rows} row(s)`));
      if (!verified.ok) throw new Exit(`copied, but the audit chain on ${safeUrl(opts.to)} does not hold: ${verified.reason}`, 1);
      console.log(`moved ${Object.values(copied).reduce((a, b) => a + b, 0)} row(s) to ${safeUrl(opts.to)}; the audit chain holds (${verified.rows} row(s))`);
    } catch (err) {
      if (err instanceof MigrateError) throw new Exit(err.message, 1);
      throw err;
    } finally {
      from.close();
      to.close();
    }
  });

/** commander's way of a repeatable option: each value appended to the list. */
function collect(value: string, list: string[]): string[] {
  return [...list, value];
}

/** `audit verify --bundle`: the bundle's rows and checkpoints, without the database or the config. */
function verifyBundleFile(file: string, pinned: TrustedKey[]): void {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Exit(`cannot read the bundle ${file}: ${code ?? 'not JSON'}`, 2);
  }
  const result = verifyBundle(parsed, pinned);
  if (!result.ok) throw new Exit(`${file}: ${result.message}`, 2);
  const keyFrom = result.keySource === 'pinned' ? 'the --public-key' : result.keySource === 'bundle' ? "the bundle's own key" : undefined;
  report(result, keyFrom, { noKey: 'the bundle holds no public key and no --public-key was given' });
  if (result.keySource === 'bundle' && result.anchors?.checked) {
    console.log(
      `checked against the bundle's own public key (${result.keyIds[0]}): this proves the bundle is consistent, not who made it; pin the key you expect with --public-key`,
    );
  }
}

/**
 * Prints what a verification found: the chain (exit 1 when broken, as before checkpoints), then the
 * last anchored row and the rows not yet anchored; exit 1 when a checkpoint does not hold.
 */
function report(
  result: Verification,
  keyFrom: string | undefined,
  { noKey = 'no auditKeyFile in the config and no --public-key', fromFile = 0 }: { noKey?: string; fromFile?: number } = {},
): void {
  const { chain, anchors } = result;
  if (!chain.ok) throw new Exit(`audit log broken at row ${chain.badRow}: ${chain.reason} (${chain.rows} row(s) checked)`, 1);
  if (!anchors) return;
  if (anchors.problems.length) {
    const lines = anchors.problems.slice(0, 20).map((p) => `  ${p.message}`);
    if (anchors.problems.length > 20) lines.push(`  ... and ${anchors.problems.length - 20} more`);
    throw new Exit(
      `audit log not as anchored: the chain of ${chain.rows} row(s) is intact, but ${anchors.problems.length} of ${anchors.checked} checkpoint(s) do not hold:\n${lines.join('\n')}`,
      1,
    );
  }
  const head = `ok: ${chain.rows} row(s), chain intact`;
  if (keyFrom === undefined) {
    const unchecked = anchors.unchecked ? ` (${anchors.unchecked} checkpoint(s) not checked)` : '';
    console.log(
      `${head}; not anchored${unchecked}: ${noKey}, so nothing shows the rows were not rewritten with their hashes (docs/how-it-works.md, "The audit log")`,
    );
    return;
  }
  const { last, unanchored } = anchors;
  console.log(last ? `${head}; last anchored row ${last.row} at ${last.time} (key ${last.keyId})` : `${head}; no checkpoint yet`);
  const lines = fromFile ? ` (${fromFile} of them lines of the anchor file)` : '';
  if (anchors.checked) console.log(`${anchors.valid} checkpoint(s) checked against ${keyFrom}, all hold${lines}`);
  if (unanchored && unanchored.from === last?.logRow && unanchored.to === last.logRow) {
    console.log(`row ${unanchored.from}, that checkpoint's own, is covered by the next one`);
  } else if (unanchored) {
    const rows = unanchored.from === unanchored.to ? `row ${unanchored.from}` : `rows ${unanchored.from}-${unanchored.to}`;
    const { everyRows, everyMs } = CHECKPOINT_RULE;
    console.log(
      `not yet anchored: ${rows}; the engine signs a checkpoint every ${everyRows} rows, every ${everyMs / 60_000} minutes when rows were added, and when it stops`,
    );
  }
}

/** The key file `berth init` makes when the config names none: beside the config, not in dataDir with the database it proves. */
const DEFAULT_KEY_FILE = 'audit.key';

program
  .command('init')
  .description(
    "make the Ed25519 key that signs the audit log's checkpoints at the config's auditKeyFile (default: audit.key beside the config; mode 0600, never overwritten) and, when the config file does not exist, a starter one: the local Docker socket, the repo of --repo, the API on loopback",
  )
  .option('--repo <url>', 'the Git repo (an https:// URL, or a local path) the starter config watches; then `berth serve` runs it')
  .option('--branch <name>', "the repo's branch", 'main')
  .option('--force', 'write the starter config over an existing one (the audit key is kept)')
  .action((opts: { repo?: string; branch: string; force?: boolean }) => {
    const target = resolve(program.opts<GlobalOptions>().config || process.env.BERTH_CONFIG || 'berth.config.yaml');
    const exists = existsSync(target);
    if (exists && opts.repo !== undefined && !opts.force) {
      throw new Exit(`${shown(target)} exists: berth init does not overwrite it (--force replaces it with the starter config, keeping the audit key)`, 1);
    }
    const writeConfig = !exists || Boolean(opts.force);
    // a config that stays says where the key goes; one replaced keeps naming the key it named
    let current: BerthConfig | undefined;
    try {
      current = exists ? loadConfigFile(target) : undefined;
    } catch (err) {
      if (!writeConfig) throw err;
    }
    const keyFile = current?.auditKeyFile ?? join(dirname(target), DEFAULT_KEY_FILE);
    const keyExists = existsSync(keyFile);
    // berth init never replaces a key; with a config to write it keeps the one there
    if (keyExists && !writeConfig) refuseKey(keyFile);
    if (!keyExists) makeKey(keyFile);
    else console.log(`kept ${shown(keyFile)}: berth init never replaces a key (the checkpoints it signed would no longer check)`);
    if (writeConfig) {
      const repo = opts.repo === undefined ? undefined : { name: repoNameOf(opts.repo), url: repoUrl(opts.repo), branch: opts.branch };
      const rel = relative(dirname(target), keyFile);
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, starterConfig({ repo, keyFile: rel.startsWith('..') || isAbsolute(rel) ? keyFile : rel }), { flag: exists ? 'w' : 'wx' });
      const what = repo ? `repo ${repo.name} (${repo.url}, branch ${repo.branch})` : 'no repos yet: add yours';
      console.log(
        `${exists ? 'replaced' : 'created'} ${shown(target)}: the local Docker socket as the host, ${what}, the API on 127.0.0.1:8080 (no tokens: loopback only), dataDir ./data, auditKeyFile ${shown(keyFile)}`,
      );
      if (repo) console.log(`next: ${hint(['serve'])}`);
    } else if (!current?.auditKeyFile) {
      console.log(`add to ${shown(target)}, for the engine to sign with it: auditKeyFile: ${relative(dirname(target), keyFile)}`);
    }
  });

function refuseKey(keyFile: string): never {
  throw new Exit(
    `${shown(keyFile)} exists: berth init never replaces a key (the checkpoints it signed would no longer check). To make a new one, move it away first`,
    1,
  );
}

/** Makes the audit key (0600) and its public half beside it. */
function makeKey(keyFile: string): void {
  const key = generateAuditKey();
  mkdirSync(dirname(keyFile), { recursive: true });
  try {
    writeFileSync(keyFile, key.privatePem, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') refuseKey(keyFile);
    throw new Exit(`cannot write ${shown(keyFile)}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`, 2);
  }
  writeFileSync(`${keyFile}.pub`, key.publicPem, { mode: 0o644 });
  console.log(`created ${shown(keyFile)}: the Ed25519 key that signs the audit log's checkpoints (key ${key.keyId}, mode 0600)`);
  console.log(`created ${shown(keyFile)}.pub: its public key, for \`berth audit verify --public-key\` elsewhere`);
}

/** `--repo` as the config holds it: a URL as given, a local path made absolute (the config's relative paths are relative to the config, not to here). */
function repoUrl(given: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(given) ? given : resolve(given);
}

/** A path as a person gave it: relative to the working folder when inside it. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path;
}

async function loadConfig(): Promise<BerthConfig> {
  const config = resolveConfig(program.opts<GlobalOptions>().config);
  if (config.source === '(embedded default)') await seedExamplesRepo(config.repos[0].url, EXAMPLES_DIR);
  return config;
}

function openAudit(config: BerthConfig): AuditLog {
  return new AuditLog(openStore(config));
}

/**
 * Runs `action` (a sync or a rollback) with, when `wait`, its rollout printed as it goes on stdout
 * (src/cli/progress.ts): text, or JSON lines with `json`.
 */
async function watched<T>(ops: Operations, opts: { wait: boolean; json?: boolean; stacks?: string[] }, action: () => Promise<T>): Promise<T> {
  if (!opts.wait) return action();
  const progress = await followProgress(ops, process.stdout, { json: opts.json, stacks: opts.stacks });
  try {
    return await action();
  } finally {
    await progress.end();
  }
}

/**
 * Whether the per-service progress lines are redrawn on the terminal: then the command logs
 * warnings and errors only, unless asked for more (--verbose, BERTH_LOG_LEVEL), as the step lines
 * say what the info lines would and a log line between would break the redrawing.
 */
const drawsProgress = (wait: boolean, json?: boolean) => wait && !json && process.stdout.isTTY === true;

/** The operations: those of the berth at BERTH_URL, else of an engine in this process (closed after `fn`). */
async function withOps<T>(fn: (ops: Operations) => Promise<T>, level: string): Promise<T> {
  const api = apiFromEnv();
  if (api) return fn(new RemoteOps(api));
  return withEngine((engine) => fn(new LocalOps(engine)), level);
}

async function withEngine<T>(fn: (engine: Engine) => Promise<T>, level: string): Promise<T> {
  const config = await loadConfig();
  const engine = new Engine(config, logger(level));
  try {
    return await fn(engine);
  } finally {
    engine.close();
  }
}

function passHeader(p: Pick<RepoPass, 'repo'> & { commit?: { sha: string; message: string; author: string } }): string {
  const c = p.commit;
  return printable(`repo ${p.repo}${c ? ` @ ${c.sha.slice(0, 7)} ${c.message.split('\n')[0]} (${c.author})` : ''}`, { oneLine: true });
}

/** A repo that could not be read (exit 2) or whose berth.yaml is broken (exit `invalid`) makes the command fail. */
function failOnErrors(passes: RepoPass[], invalid = 1): void {
  const broken = passes.filter((p) => p.error);
  if (broken.length === 0) return;
  const unreadable = broken.some((p) => !p.commit);
  throw new Exit(broken.map((p) => `repo ${p.repo}: ${p.error}`).join('\n'), unreadable ? 2 : invalid);
}

function indent(lines: string[], pad = '  '): string {
  return lines
    .map((l) =>
      printable(l)
        .split('\n')
        .map((x) => pad + x)
        .join('\n'),
    )
    .join('\n');
}

/** The policy of repo `name` in the engine config (--config, $BERTH_CONFIG, ./berth.config.yaml). */
function repoPolicy(name: string) {
  const config = resolveConfig(program.opts<GlobalOptions>().config);
  const repo = config.repos.find((r) => r.name === name);
  if (!repo) throw new Exit(`no repo '${name}' in ${config.source} (its repos: ${config.repos.map((r) => r.name).join(', ') || 'none'})`, 2);
  return repo.policy;
}

/**
 * A folder on disk as a snapshot, for `validate` (no git needed), of the repo `repo`: by default
 * named after the folder as Compose names a project after it (lower-cased, other characters than
 * a-z, 0-9, _ and - dropped, then leading _ and - ).
 */
function readFolder(dir: string, repo?: string): Snapshot {
  const root = resolve(dir);
  try {
    if (!statSync(root).isDirectory()) throw new Exit(`${dir} is not a folder`, 2);
  } catch (err) {
    if (err instanceof Exit) throw err;
    throw new Exit(`cannot read ${dir}: no such folder`, 2);
  }
  const files = new Map<string, Uint8Array>();
  const modes = new Map<string, number>();
  for (const entry of readdirSync(root, { recursive: true, withFileTypes: true })) {
    const path = relative(root, join(entry.parentPath, entry.name)).split('\\').join('/');
    if (!entry.isFile() || /(^|\/)(\.git|node_modules)\//.test(path)) continue;
    files.set(path, readFileSync(join(root, path)));
    if (statSync(join(root, path)).mode & 0o111) modes.set(path, 0o100755);
  }
  const commit = { sha: '0'.repeat(40), author: '', email: '', message: '(working tree)', time: 0 };
  const folder = basename(root)
    .toLowerCase()
    .replace(/[^a-z0-9_-]/g, '')
    .replace(/^[_-]+/, '');
  return { repo: repo ?? (folder || basename(root)), commit, files, modes };
}

try {
  await program.parseAsync();
} catch (err) {
  // an error may quote a repo, a host or a server: printed without control characters
  if (err instanceof Exit) {
    if (err.message) console.error(printable(err.message));
    process.exitCode = err.code;
  } else if (err instanceof ApiError) {
    console.error(`berth: ${printable(err.message)}`);
    process.exitCode = err.exitCode;
  } else if (err instanceof EngineError && err.code !== 'data-dir-owned') {
    // refused as the server would refuse it (an unknown stack, nothing to resume): what was asked failed
    console.error(`berth: ${printable(err.message)}`);
    process.exitCode = 1;
  } else if (err instanceof ConfigError || err instanceof EngineError) {
    console.error(`berth: ${printable(err.message)}`);
    process.exitCode = 2;
  } else {
    console.error(`berth: ${printable((err as Error).message)}`);
    if (process.env.BERTH_DEBUG) console.error(err);
    process.exitCode = 2;
  }
}
