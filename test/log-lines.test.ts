// The decisions and formatting of a stack's logs, with plain data: what a request asks (since,
// tail), prefixes, Docker's timestamps, lines cut from a byte stream, the newest lines within the
// byte bound, the order of followed lines, masking, and how the CLI and the API print them.
import { PassThrough, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { masking, secretPieces } from '../src/apply/job.ts';
import { logPrinter, useColour } from '../src/cli/logs.ts';
import { EngineError } from '../src/engine/errors.ts';
import {
  byReplica,
  dockerSince,
  formatLine,
  formatNotice,
  lastRunSince,
  laterSince,
  LineSplitter,
  logRequest,
  NewestLines,
  prefixWidth,
  Reorder,
  replicaPrefix,
  DockerLines,
  DOCKER_PARTIAL,
  type HeldLine,
  type LogReplica,
} from '../src/engine/log-lines.ts';
import { logBody, wantsNdjson } from '../src/server/logs.ts';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const refusal = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return err instanceof EngineError ? { code: err.code, message: err.message } : { code: 'not an EngineError', message: String(err) };
  }
  return undefined;
};

describe('what a request asks', () => {
  it('defaults: the last 200 lines of each container, not followed, no timestamps', () => {
    expect(logRequest({}, NOW)).toEqual({ tail: 200, since: undefined, follow: false, timestamps: false });
  });

  it.each([
    ['10m', '1772365800.000000000'],
    ['1h', '1772362800.000000000'],
    ['90s', '1772366310.000000000'],
    ['7d', '1771761600.000000000'],
    ['2026-03-01T10:00:00Z', '1772359200.000000000'],
    ['2026-03-01T10:00:00.123Z', '1772359200.123000000'],
    ['2026-03-01T10:00:00.123456789Z', '1772359200.123456789'],
    ['2026-03-01T12:00:00.5+02:00', '1772359200.500000000'],
    ['2026-03-01', '1772323200.000000000'],
  ])('since %s is Docker since %s', (since, docker) => {
    expect(dockerSince(since, NOW)).toBe(docker);
    expect(logRequest({ since }, NOW).since).toBe(docker);
  });

  it.each([
    [{ tail: -1 }, /^tail: -1 is not a whole number from 0 to 10000$/],
    [{ tail: 10_001 }, /^tail: 10001 is not a whole number from 0 to 10000$/],
    [{ tail: 1.5 }, /^tail: 1.5 is not/],
    [{ since: 'yesterday' }, /^since: invalid time "yesterday": give a duration such as 30m/],
    [{ since: '2026-02-30T10:00:00Z' }, /^since: invalid time/],
  ])('%j is refused as invalid-request', (q, message) => {
    const r = refusal(() => logRequest(q, NOW));
    expect(r?.code).toBe('invalid-request');
    expect(r?.message).toMatch(message);
  });

  it('tail 0 and 10000 are taken', () => {
    expect(logRequest({ tail: 0 }).tail).toBe(0);
    expect(logRequest({ tail: 10_000, follow: true, timestamps: true })).toMatchObject({ tail: 10_000, follow: true, timestamps: true });
  });

  it('the later of two since values, with nanoseconds', () => {
    expect(laterSince(undefined, undefined)).toBeUndefined();
    expect(laterSince('10.5', undefined)).toBe('10.5');
    expect(laterSince(undefined, '10.5')).toBe('10.5');
    expect(laterSince('10.000000002', '10.000000001')).toBe('10.000000002');
    expect(laterSince('9.999999999', '10')).toBe('10');
    expect(laterSince('10.5', '10.49')).toBe('10.5');
  });

  it("a job's last run: from a second before it last started; a container never started has none", () => {
    expect(lastRunSince('2026-03-01T10:00:05.250000000Z')).toBe('1772359204.250000000');
    expect(lastRunSince('0001-01-01T00:00:00Z')).toBeUndefined();
    expect(lastRunSince(undefined)).toBeUndefined();
  });
});

describe('prefixes and text lines', () => {
  const replicas = [
    { service: 'web', slot: 2, host: 'h1' },
    { service: 'api', slot: 10, host: 'h2' },
    { service: 'web', slot: 1, host: 'h2' },
    { service: 'web', slot: 1, host: 'h1' },
  ];

  it('service.slot@host, sorted by service, slot, host, padded to the longest', () => {
    expect(replicaPrefix(replicas[0]!)).toBe('web.2@h1');
    expect([...replicas].sort(byReplica).map(replicaPrefix)).toEqual(['api.10@h2', 'web.1@h1', 'web.1@h2', 'web.2@h1']);
    expect(prefixWidth(replicas)).toBe('api.10@h2'.length);
    expect(formatLine({ service: 'web', slot: 2, host: 'h1', stream: 'stdout', text: 'hello' }, 9)).toBe('web.2@h1  | hello');
    expect(formatLine({ service: 'web', slot: 2, host: 'h1', stream: 'stderr', time: '2026-03-01T10:00:00.000000001Z', text: 'x' })).toBe(
      'web.2@h1 | 2026-03-01T10:00:00.000000001Z x',
    );
    expect(formatNotice({ notice: 'truncated', message: 'cut' })).toBe('-- berth: cut');
  });
});

describe("lines from Docker's log stream", () => {
  const T = '2026-03-01T10:00:00.123456789Z';
  const at = Date.parse('2026-03-01T10:00:00.123Z') + 0.456789;
  const all = (d: DockerLines, chunks: Array<string | Buffer>) => [...chunks.flatMap((c) => d.push(Buffer.from(c))), ...d.end()];

  it('splits the RFC 3339 timestamp off each line, across chunks (a stamp cut between them too), CRLF and LF', () => {
    const d = new DockerLines();
    expect(all(d, [`${T} hello world\n${T.slice(0, 10)}`, `${T.slice(10)} second\r\n2026-03-01T10:00:01Z `, 'third'])).toEqual([
      { time: T, at, text: 'hello world' },
      { time: T, at, text: 'second' },
      { time: '2026-03-01T10:00:01Z', at: Date.parse('2026-03-01T10:00:01Z'), text: 'third' },
    ]);
    const later = all(new DockerLines(), ['2026-03-01T10:00:00.000000900Z b\n'])[0]!.at;
    expect(all(new DockerLines(), ['2026-03-01T10:00:00.000000001Z a\n'])[0]!.at).toBeLessThan(later);
  });

  it('a character cut between chunks stays whole; a line without a stamp keeps its text', () => {
    const euro = Buffer.from('€');
    const d = new DockerLines();
    expect(
      all(d, [Buffer.concat([Buffer.from(`${T} price `), euro.subarray(0, 1)]), Buffer.concat([euro.subarray(1), Buffer.from('\nno stamp here\nhi\n')])]),
    ).toEqual([
      { time: T, at, text: 'price €' },
      { time: '', at: 0, text: 'no stamp here' },
      { time: '', at: 0, text: 'hi' },
    ]);
  });

  it('joins the messages Docker cut a long line into, each stamped again (stdout/stderr frames and a TTY alike)', () => {
    const a = (n: number) => 'a'.repeat(n);
    // as a multiplexed stream gives it: two frames, the first without a newline
    expect(all(new DockerLines(), [`${T} ${a(DOCKER_PARTIAL)}`, `${T} ${a(3616)}\n${T} next\n`]).map((l) => [l.text.length, l.time])).toEqual([
      [DOCKER_PARTIAL + 3616, T],
      [4, T],
    ]);
    // as a TTY gives it: one byte stream, cut anywhere, CRLF
    const raw = Buffer.from(`${T} ${a(DOCKER_PARTIAL)}${T} ${a(DOCKER_PARTIAL)}${T} ${a(7232)}\r\n${T} next\r\n`);
    const d = new DockerLines(1 << 20);
    const lines = [
      ...d.push(raw.subarray(0, DOCKER_PARTIAL + 40)),
      ...d.push(raw.subarray(DOCKER_PARTIAL + 40, 2 * DOCKER_PARTIAL + 45)),
      ...d.push(raw.subarray(2 * DOCKER_PARTIAL + 45)),
      ...d.end(),
    ];
    expect(lines.map((l) => l.text)).toEqual([a(2 * DOCKER_PARTIAL + 7232), 'next']);
    // a line of exactly that length: its newline may come as a message of its own, or right after it
    expect(all(new DockerLines(), [`${T} ${a(DOCKER_PARTIAL)}${T} \n`, `${T} ${a(DOCKER_PARTIAL)}\n`]).map((l) => l.text.length)).toEqual([
      DOCKER_PARTIAL,
      DOCKER_PARTIAL,
    ]);
    // another time at that place is the line's own text
    const other = '2026-03-01T11:00:00.000000000Z';
    expect(all(new DockerLines(), [`${T} ${a(DOCKER_PARTIAL)}${other} x\n`]).map((l) => l.text)).toEqual([`${a(DOCKER_PARTIAL)}${other} x`]);
  });

  it("a line longer than the bound comes in pieces of the bound, each with the line's time", () => {
    expect(all(new DockerLines(4), [`${T} abcdefghij`, 'k\n'])).toEqual([
      { time: T, at, text: 'abcd' },
      { time: T, at, text: 'efgh' },
      { time: T, at, text: 'ijk' },
    ]);
  });
});

describe('lines from a byte stream', () => {
  it('across chunks, CRLF and LF, a character cut between chunks, the last line without a newline', () => {
    const s = new LineSplitter();
    const euro = Buffer.from('€'); // three bytes
    expect(s.push(Buffer.from('one\r\ntw'))).toEqual(['one']);
    expect(s.push(Buffer.concat([Buffer.from('o '), euro.subarray(0, 1)]))).toEqual([]);
    expect(s.push(Buffer.concat([euro.subarray(1), Buffer.from('\n\nthree')]))).toEqual(['two €', '']);
    expect(s.end()).toEqual(['three']);
    expect(s.end()).toEqual([]);
  });

  it('a line longer than the bound comes in pieces of the bound', () => {
    const s = new LineSplitter(4);
    expect(s.push(Buffer.from('abcdefghij'))).toEqual(['abcd', 'efgh']);
    expect(s.push(Buffer.from('k\nxy'))).toEqual(['ijk']);
    expect(s.end()).toEqual(['xy']);
  });
});

const at = (sec: number) => ({ time: `t${sec}`, at: sec * 1000, text: `line at ${sec}` });

describe('the newest lines within the byte bound', () => {
  it('keeps every line under the bound, in time order or replica after replica', () => {
    const n = new NewestLines(1000);
    n.add(1, 'stdout', at(1));
    n.add(0, 'stdout', at(2));
    n.add(1, 'stderr', at(3));
    n.add(0, 'stdout', at(4));
    expect(n.truncated).toBe(false);
    expect(n.lines('time').map((l) => l.text)).toEqual(['line at 1', 'line at 2', 'line at 3', 'line at 4']);
    expect(n.lines('replica').map((l) => [l.replica, l.text])).toEqual([
      [0, 'line at 2'],
      [0, 'line at 4'],
      [1, 'line at 1'],
      [1, 'line at 3'],
    ]);
    expect(n.lastTime.get(1)).toEqual({ at: 3000, time: 't3' });
  });

  it('past the bound, the oldest line of all goes, whichever replica wrote it', () => {
    const size = Buffer.byteLength('line at 1') + 1;
    const n = new NewestLines(size * 3);
    for (const [replica, sec] of [
      [0, 1],
      [0, 2],
      [1, 3],
      [0, 5],
      [1, 4],
    ] as const)
      n.add(replica, 'stdout', at(sec));
    expect(n.truncated).toBe(true);
    expect(n.lines('time').map((l) => l.text)).toEqual(['line at 3', 'line at 4', 'line at 5']);
    // where a follow goes on is the newest line read, kept or not
    expect(n.lastTime.get(0)?.time).toBe('t5');
  });

  it('a bound smaller than one line keeps nothing, and says so', () => {
    const n = new NewestLines(3);
    n.add(0, 'stdout', at(1));
    expect(n.lines('time')).toEqual([]);
    expect(n.truncated).toBe(true);
  });
});

describe('followed lines in time order', () => {
  const held = (replica: number, sec: number, seq: number): HeldLine => ({ ...at(sec), replica, stream: 'stdout', seq });

  it('holds each line for the window, then gives those due in time order', () => {
    const r = new Reorder(250);
    r.push(held(0, 5, 0), 1000);
    r.push(held(1, 4, 1), 1100);
    r.push(held(0, 6, 2), 1300);
    expect(r.take(1200)).toEqual([]);
    expect(r.take(1350).map((l) => l.text)).toEqual(['line at 4', 'line at 5']);
    expect(r.size).toBe(1);
    expect(r.take(1360, true).map((l) => l.text)).toEqual(['line at 6']);
    expect(r.size).toBe(0);
  });

  it('equal times keep the order they were read in', () => {
    const r = new Reorder(0);
    r.push(held(1, 1, 0), 0);
    r.push(held(0, 1, 1), 0);
    expect(r.take(0).map((l) => l.replica)).toEqual([1, 0]);
  });
});

describe('masking lines', () => {
  it('each secret whole, and each line of a secret of several lines; short ones are not masked', () => {
    const pieces = secretPieces(['  s3cret-value\n', '-----BEGIN KEY-----\nAAAABBBB\n-----END KEY-----\n', 'abc', 'ab\ncd']);
    expect(pieces).toEqual([
      's3cret-value',
      '-----BEGIN KEY-----\nAAAABBBB\n-----END KEY-----',
      '-----BEGIN KEY-----',
      'AAAABBBB',
      '-----END KEY-----',
      'ab\ncd', // whole: 5 characters; its lines are too short
    ]);
    const mask = masking(pieces);
    expect(mask('token=s3cret-value, key line AAAABBBB, abc stays')).toBe('token=<masked>, key line <masked>, abc stays');
    expect(masking([])('as is')).toBe('as is');
    // a secret holding another is masked whole
    expect(masking(['pass', 'password123'])('password123 pass')).toBe('<masked> <masked>');
  });
});

describe('berth logs on a terminal and piped', () => {
  const replicas: LogReplica[] = [
    { service: 'web', slot: 1, host: 'h1', container: 'a', state: 'running', tty: false },
    { service: 'worker', slot: 1, host: 'h2', container: 'b', state: 'running', tty: false },
  ];
  const line = { service: 'web', slot: 1, host: 'h1', stream: 'stdout' as const, text: 'red \x1b[31mtext\x1b[0m\there\rover' };

  it('colour per replica on a terminal, control characters dropped, tabs kept', () => {
    const print = logPrinter(replicas, { colour: true, terminal: true });
    expect(print(line)).toEqual({ out: '\x1b[36mweb.1@h1    |\x1b[0m red [31mtext[0m\thereover\n' });
    expect(print({ ...line, service: 'worker', host: 'h2', text: 'x' })).toEqual({ out: '\x1b[33mworker.1@h2 |\x1b[0m x\n' });
    // a replica not in the list gets the next colour
    expect(print({ ...line, slot: 2, text: 'y' })).toEqual({ out: '\x1b[32mweb.2@h1    |\x1b[0m y\n' });
    expect(print({ notice: 'truncated', message: 'cut \x1b[2J' })).toEqual({ err: 'berth: cut [2J\n' });
  });

  it('piped: no colour, the text as the container wrote it', () => {
    const print = logPrinter(replicas, { colour: false, terminal: false });
    expect(print(line)).toEqual({ out: `web.1@h1    | ${line.text}\n` });
  });

  it('colour only on a terminal without NO_COLOR', () => {
    expect(useColour(true, {})).toBe(true);
    expect(useColour(true, { NO_COLOR: '1' })).toBe(false);
    expect(useColour(true, { NO_COLOR: '' })).toBe(true);
    expect(useColour(false, {})).toBe(false);
    expect(useColour(undefined, {})).toBe(false);
  });
});

describe("the API's answer types", () => {
  it.each([
    ['application/x-ndjson', true],
    ['text/plain, application/x-ndjson;q=0.9', true],
    ['Application/X-NDJSON', true],
    ['application/json', false],
    ['*/*', false],
    [undefined, false],
  ])('Accept %s: JSON lines %s', (accept, ndjson) => {
    expect(wantsNdjson(accept)).toBe(ndjson);
  });
});

describe("the API's answer body", () => {
  const replicas: LogReplica[] = [
    { service: 'web', slot: 1, host: 'h1', container: 'a', state: 'running', tty: false },
    { service: 'worker', slot: 1, host: 'h2', container: 'b', state: 'exited', job: 'once', tty: false },
  ];
  const read = async (body: Readable) => {
    let text = '';
    for await (const chunk of body) text += String(chunk);
    return text;
  };

  it('text: one line per line, prefixes padded, notices set apart', async () => {
    const records = Readable.from([
      { service: 'web', slot: 1, host: 'h1', stream: 'stdout', text: 'hello' },
      { service: 'worker', slot: 1, host: 'h2', stream: 'stderr', time: '2026-03-01T10:00:00.000000001Z', text: 'oops' },
      { notice: 'truncated', message: 'cut' },
    ]);
    expect(await read(logBody({ replicas, records }, { ndjson: false }))).toBe(
      'web.1@h1    | hello\nworker.1@h2 | 2026-03-01T10:00:00.000000001Z oops\n-- berth: cut\n',
    );
  });

  it('JSON lines: the replicas first, at once; then a record a line; an empty line now and then while it stays open', async () => {
    const records = new PassThrough({ objectMode: true });
    const body = logBody({ replicas, records }, { ndjson: true, keepAliveMs: 10 });
    const text = read(body);
    records.write({ service: 'web', slot: 1, host: 'h1', stream: 'stdout', text: 'hello' });
    await sleep(60);
    records.end();
    const lines = (await text).split('\n');
    expect(JSON.parse(lines[0]!)).toEqual({ replicas });
    expect(JSON.parse(lines[1]!)).toEqual({ service: 'web', slot: 1, host: 'h1', stream: 'stdout', text: 'hello' });
    expect(lines.slice(2, -1).length).toBeGreaterThan(0);
    expect(lines.slice(2).every((l) => l === '')).toBe(true);
  });

  it('destroying the body (the client went) destroys the records', async () => {
    const records = new PassThrough({ objectMode: true });
    const body = logBody({ replicas, records }, { ndjson: false });
    body.destroy();
    await sleep(10);
    expect(records.destroyed).toBe(true);
  });
});
