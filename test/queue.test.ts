// The engine's work queue (pure, with plain promises): one pass per repo at a time, requests that
// arrive meanwhile merged into the one waiting when it does all they ask.
import { describe, expect, it } from 'vitest';
import { covers, PassQueue, type PassRequest } from '../src/engine/queue.ts';

describe('covers', () => {
  it.each<[string, PassRequest, PassRequest, boolean]>([
    ['every stack covers one stack', { trigger: 'poll' }, { trigger: 'webhook', stack: 'web' }, true],
    ['one stack does not cover every stack', { trigger: 'poll', stack: 'web' }, { trigger: 'poll' }, false],
    ['a poll does not do what a sync by hand asks (apply anyway)', { trigger: 'poll' }, { trigger: 'manual' }, false],
    ['a sync by hand covers a poll', { trigger: 'manual' }, { trigger: 'poll' }, true],
    ['a pass that does not wait for health does not cover one that does', { trigger: 'manual' }, { trigger: 'manual', waitHealthy: true }, false],
  ])('%s', (_, queued, request, expected) => expect(covers(queued, request)).toBe(expected));
});

describe('PassQueue', () => {
  it('runs one pass per repo at a time; requests while one runs share the next; other repos run beside', async () => {
    const log: string[] = [];
    const gates = new Map<string, () => void>();
    const q = new PassQueue<PassRequest & { id: string }, string>(async (repo, opts) => {
      log.push(`start ${repo} ${opts.id}`);
      await new Promise<void>((resolve) => gates.set(`${repo} ${opts.id}`, resolve));
      log.push(`end ${repo} ${opts.id}`);
      return `${repo} ${opts.id}`;
    });
    const first = q.request('a', { trigger: 'poll', id: '1' });
    await Promise.resolve();
    const second = q.request('a', { trigger: 'poll', id: '2' });
    const third = q.request('a', { trigger: 'webhook', id: '3' }); // joins the waiting one
    const manual = q.request('a', { trigger: 'manual', id: '4' }); // asks more: queued after
    const other = q.request('b', { trigger: 'poll', id: '5' });
    expect(q.queued('a', { trigger: 'webhook' })).toBe(true);
    await new Promise((r) => setTimeout(r, 0));
    expect(log).toEqual(['start a 1', 'start b 5']);
    gates.get('a 1')!();
    expect(await first).toBe('a 1');
    await new Promise((r) => setTimeout(r, 0));
    expect(log).toEqual(['start a 1', 'start b 5', 'end a 1', 'start a 2']);
    gates.get('a 2')!();
    expect(await second).toBe('a 2');
    expect(await third).toBe('a 2');
    await new Promise((r) => setTimeout(r, 0));
    gates.get('a 4')!();
    gates.get('b 5')!();
    expect([await manual, await other]).toEqual(['a 4', 'b 5']);
    await q.drain();
    expect(q.queued('a', { trigger: 'webhook' })).toBe(false);
  });
});
