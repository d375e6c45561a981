// What keeps web pages from driving berth (docs/api.md, "Browsers"; docs/config.md, "The API and
// browsers"), as plain data: the Host names berth answers to, what makes a request cross-site,
// JSON bodies, and the windows that bound the audit rows of rejected webhook deliveries. The same
// rules on a running berth are in test/api.test.ts and test/webhooks.test.ts.
import { describe, expect, it } from 'vitest';
import { clip, crossSite, hasBody, HostNames, isJson, splitHost } from '../src/server/browsers.ts';
import { RejectionWindows } from '../src/server/rejections.ts';

const names = (listen: string, extra: { publicUrl?: string; allowedHosts?: string[] } = {}) => new HostNames({ listen, allowedHosts: [], ...extra });

describe('the Host names berth answers to', () => {
  it.each([
    ['127.0.0.1:8080', undefined],
    ['localhost:8080', undefined],
    ['LOCALHOST:8080', undefined],
    ['[::1]:8080', undefined],
    ['127.0.0.1:8080', '127.0.0.1'],
  ])('listening on loopback: %s (arrived at %s)', (host, address) => {
    expect(names('127.0.0.1:8080').allows(host, { port: 8080, address })).toBe(true);
  });

  it.each([
    ['evil.example:8080', 'a name made to resolve to 127.0.0.1 (DNS rebinding)'],
    ['evil.example', 'the same without a port'],
    ['localhost:9999', 'another port'],
    ['localhost', 'no port is port 80'],
    ['127.0.0.2:8080', 'another loopback address'],
    ['localhost.:8080', 'a name with a trailing dot is another name'],
    ['', 'an empty Host'],
    [undefined, 'no Host'],
  ])('listening on loopback: refuses %j (%s)', (host, why) => {
    expect(names('127.0.0.1:8080').allows(host, { port: 8080, address: '127.0.0.1' }), why).toBe(false);
  });

  it('takes the port the request arrived at, not the one in listen (listen :0, a test)', () => {
    expect(names('127.0.0.1:0').allows('localhost:41234', { port: 41234 })).toBe(true);
    expect(names('127.0.0.1:0').allows('localhost:0', { port: 41234 })).toBe(false);
  });

  it('on port 80 a Host without a port is the same name', () => {
    expect(names('127.0.0.1:80').allows('localhost', { port: 80 })).toBe(true);
    expect(names('127.0.0.1:80').allows('localhost:80', { port: 80 })).toBe(true);
  });

  it('listening on 0.0.0.0 with neither publicUrl nor allowedHosts: any Host', () => {
    const open = names('0.0.0.0:8080');
    expect(open.open).toBe(true);
    expect(open.configured).toBe(false);
    expect(open.allows('whatever.example:1', { port: 8080 })).toBe(true);
    expect(open.allows(undefined, { port: 8080 })).toBe(true);
  });

  it('listening on 0.0.0.0 with publicUrl: its host (default port or none), and the address the request came to', () => {
    const n = names('0.0.0.0:8080', { publicUrl: 'https://berth.example.com' });
    expect(n.open).toBe(false);
    expect(n.configured).toBe(true);
    expect(n.allows('berth.example.com', { port: 8080 })).toBe(true);
    expect(n.allows('Berth.Example.com:443', { port: 8080 })).toBe(true);
    expect(n.allows('berth.example.com:8080', { port: 8080 })).toBe(false);
    expect(n.allows('10.0.0.5:8080', { port: 8080, address: '10.0.0.5' })).toBe(true);
    expect(n.allows('10.0.0.5:8080', { port: 8080, address: '::ffff:10.0.0.5' })).toBe(true);
    expect(n.allows('[fd00::5]:8080', { port: 8080, address: 'fd00::5' })).toBe(true);
    expect(n.allows('10.0.0.6:8080', { port: 8080, address: '10.0.0.5' })).toBe(false);
    expect(n.allows('evil.example:8080', { port: 8080, address: '10.0.0.5' })).toBe(false);
    expect(n.allows('0.0.0.0:8080', { port: 8080, address: '10.0.0.5' })).toBe(false);
  });

  it('publicUrl with a port: that port only', () => {
    const n = names('127.0.0.1:8080', { publicUrl: 'http://berth.lan:8443/berth' });
    expect(n.allows('berth.lan:8443', { port: 8080 })).toBe(true);
    expect(n.allows('berth.lan', { port: 8080 })).toBe(false);
    expect(n.allows('localhost:8080', { port: 8080 })).toBe(true);
  });

  it('allowedHosts: a name on any port, name:port on that one', () => {
    const n = names('10.0.0.5:8080', { allowedHosts: ['berth.lan', 'proxy.lan:3000', '[fd00::1]:8080'] });
    expect(n.allows('berth.lan', { port: 8080 })).toBe(true);
    expect(n.allows('berth.lan:1234', { port: 8080 })).toBe(true);
    expect(n.allows('proxy.lan:3000', { port: 8080 })).toBe(true);
    expect(n.allows('proxy.lan:3001', { port: 8080 })).toBe(false);
    expect(n.allows('proxy.lan', { port: 8080 })).toBe(false);
    expect(n.allows('[fd00::1]:8080', { port: 8080 })).toBe(true);
    // the listen host, on its port; not the loopback names (it does not listen there)
    expect(n.allows('10.0.0.5:8080', { port: 8080 })).toBe(true);
    expect(n.allows('localhost:8080', { port: 8080 })).toBe(false);
  });

  it.each([
    ['localhost:8080', { name: 'localhost', port: '8080' }],
    ['[::1]:8080', { name: '[::1]', port: '8080' }],
    ['[::1]', { name: '[::1]' }],
    ['Example.COM', { name: 'example.com' }],
  ])('splits %s', (host, split) => {
    expect(splitHost(host)).toEqual(split);
  });
});

describe('cross-site requests', () => {
  const host = '127.0.0.1:8080';
  it.each([
    [{ host }, undefined],
    [{ host, origin: 'http://127.0.0.1:8080' }, undefined],
    [{ host, origin: 'HTTP://127.0.0.1:8080', 'sec-fetch-site': 'same-origin' }, undefined],
    [{ host, 'sec-fetch-site': 'none' }, undefined],
    [{ host: 'berth.example.com', origin: 'https://berth.example.com' }, undefined],
    [{ host, origin: 'https://berth.example.com' }, undefined],
  ])('%j: not cross-site (publicUrl https://berth.example.com)', (headers, why) => {
    expect(crossSite(headers, 'https://berth.example.com')).toBe(why);
  });

  it.each([
    [{ host, origin: 'https://evil.example' }, 'a request from a page of https://evil.example (Origin)'],
    [{ host, origin: 'http://localhost:3000' }, 'a request from a page of http://localhost:3000 (Origin)'],
    [{ host, origin: 'null' }, 'a request from a page of null (Origin)'],
    [{ host, origin: 'https://127.0.0.1:8080' }, 'a request from a page of https://127.0.0.1:8080 (Origin)'],
    [{ host, 'sec-fetch-site': 'cross-site' }, 'a cross-site request (Sec-Fetch-Site)'],
    [{ host, 'sec-fetch-site': 'same-site', origin: 'http://127.0.0.1:8080' }, 'a same-site request (Sec-Fetch-Site)'],
    [{ host, origin: `https://${'x'.repeat(100)}.example` }, `a request from a page of https://${'x'.repeat(56)}… (Origin)`],
  ])('%j: cross-site', (headers, why) => {
    expect(crossSite(headers)).toBe(why);
  });
});

describe('bodies', () => {
  it.each([
    [{}, false],
    [{ 'content-length': '0' }, false],
    [{ 'content-length': '2' }, true],
    [{ 'transfer-encoding': 'chunked' }, true],
  ])('%j has a body: %s', (headers, body) => {
    expect(hasBody(headers)).toBe(body);
  });

  it.each([
    ['application/json', true],
    ['Application/JSON; charset=utf-8', true],
    ['text/plain', false],
    ['text/plain;charset=UTF-8', false],
    ['application/x-www-form-urlencoded', false],
    ['multipart/form-data; boundary=x', false],
    ['application/json-patch+json', false],
    [undefined, false],
  ])('%j is JSON: %s', (type, json) => {
    expect(isJson(type)).toBe(json);
  });

  it('clips what a message quotes', () => {
    expect(clip('short')).toBe('short');
    expect(clip('y'.repeat(64))).toBe('y'.repeat(64));
    expect(clip('y'.repeat(65))).toBe(`${'y'.repeat(64)}…`);
  });
});

describe('the audit windows of rejected webhook deliveries', () => {
  /** A clock the test moves. */
  const clock = (start = 1_000_000) => {
    let t = start;
    return { now: () => t, advance: (ms: number) => (t += ms) };
  };

  it('audits the first rejection of a window, counts the rest, and sums them up once the window ended', () => {
    const c = clock();
    const w = new RejectionWindows<string>({ now: c.now });
    expect(w.admit('10.0.0.9', 'github', 'first')).toEqual({ audit: true });
    for (let i = 0; i < 41; i++) {
      c.advance(1000);
      expect(w.admit('10.0.0.9', 'github', `forged ${i}`)).toEqual({ audit: false });
    }
    expect(w.ended()).toEqual([]); // the window has not ended
    c.advance(20_000);
    expect(w.ended()).toEqual([{ address: '10.0.0.9', provider: 'github', count: 41, since: 1_001_000, last: 'forged 40' }]);
    // the summary started a new window: the next rejection in it is counted, not audited
    c.advance(5000);
    expect(w.admit('10.0.0.9', 'github', 'again')).toEqual({ audit: false });
    c.advance(60_000);
    expect(w.ended()).toEqual([expect.objectContaining({ count: 1, last: 'again' })]);
    // a window that ends with nothing untold is forgotten: the next rejection is audited at once
    c.advance(60_000);
    expect(w.ended()).toEqual([]);
    expect(w.size).toBe(0);
    expect(w.admit('10.0.0.9', 'github', 'later')).toEqual({ audit: true });
  });

  it('keeps a window per source address and provider', () => {
    const c = clock();
    const w = new RejectionWindows<string>({ now: c.now });
    expect(w.admit('10.0.0.9', 'github', 'a')).toEqual({ audit: true });
    expect(w.admit('10.0.0.9', 'gitlab', 'b')).toEqual({ audit: true });
    expect(w.admit('10.0.0.10', 'github', 'c')).toEqual({ audit: true });
    expect(w.admit('10.0.0.9', 'github', 'd')).toEqual({ audit: false });
    expect(w.size).toBe(3);
  });

  it('a rejection after a window that ended untold (ended() not asked yet) is audited with the count', () => {
    const c = clock();
    const w = new RejectionWindows<string>({ now: c.now });
    w.admit('10.0.0.9', 'registry', 'a');
    c.advance(10);
    w.admit('10.0.0.9', 'registry', 'b');
    w.admit('10.0.0.9', 'registry', 'c');
    c.advance(60_000);
    expect(w.admit('10.0.0.9', 'registry', 'd')).toEqual({
      audit: true,
      before: { address: '10.0.0.9', provider: 'registry', count: 2, since: 1_000_010, last: 'c' },
    });
    expect(w.ended()).toEqual([]);
  });

  it('all: every window that has untold rejections, ended or not (the server stops)', () => {
    const c = clock();
    const w = new RejectionWindows<string>({ windowMs: 60_000, now: c.now });
    w.admit('10.0.0.9', 'github', 'a');
    w.admit('10.0.0.9', 'github', 'b');
    w.admit('10.0.0.7', 'github', 'c');
    expect(w.ended()).toEqual([]);
    expect(w.ended({ all: true })).toEqual([expect.objectContaining({ address: '10.0.0.9', count: 1, last: 'b' })]);
    expect(w.ended({ all: true })).toEqual([]);
  });
});
