// Render scheduling with a fake clock, as mime.ts sets it up (the plugin's renderInterval, 50 ms by
// default): never per token, and the pace the same however long the answer grows.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { IClock, RenderScheduler } from '../src/coalesce';

class FakeClock implements IClock {
  time = 0;
  timers: { at: number; fn: () => void; id: number }[] = [];
  private _id = 0;
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this._id;
    this.timers.push({ at: this.time + ms, fn, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers = this.timers.filter(t => t.id !== handle);
  }
  advance(ms: number): void {
    const end = this.time + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > end) {
        break;
      }
      this.timers.shift();
      this.time = next.at;
      next.fn();
    }
    this.time = end;
  }
}

const INTERVAL = 50; // the plugin's default renderInterval (index.ts)

/** `chunks` deltas, one every `everyMs`, then the end; the times of the renders. */
function stream(chunks: number, everyMs: number): number[] {
  const clock = new FakeClock();
  const renders: number[] = [];
  const scheduler = new RenderScheduler(() => renders.push(clock.now()), INTERVAL, clock);
  for (let i = 1; i <= chunks; i++) {
    scheduler.changed();
    clock.advance(everyMs);
  }
  scheduler.flush();
  return renders;
}

test('many tokens in one interval make one render', () => {
  const clock = new FakeClock();
  let renders = 0;
  const scheduler = new RenderScheduler(() => renders++, INTERVAL, clock);
  for (let i = 0; i < 100; i++) {
    scheduler.changed();
  }
  clock.advance(INTERVAL + 10);
  assert.equal(renders, 1);
});

test('never more than one render per interval while streaming', () => {
  const renders = stream(4000, 1); // 4,000 chunks over 4 s
  // one per interval, the first at once, and the flush at the end
  assert.ok(renders.length <= 4000 / INTERVAL + 2, `${renders.length} renders`);
  for (let i = 1; i < renders.length - 1; i++) {
    assert.ok(renders[i] - renders[i - 1] >= INTERVAL, `renders ${renders[i - 1]} and ${renders[i]}`);
  }
});

test('the pace does not slow as the answer grows: a render every interval to the end', () => {
  // 4,000 chunks over 4 s (a long answer by its end): about 80 renders, evenly spread
  const renders = stream(4000, 1);
  assert.ok(renders.length >= 4000 / INTERVAL - 1, `${renders.length} renders`);
  for (let i = 1; i < renders.length; i++) {
    assert.ok(renders[i] - renders[i - 1] <= INTERVAL + 1, `a gap of ${renders[i] - renders[i - 1]} ms`);
  }
});

test('new text after a quiet spell shows at once', () => {
  const clock = new FakeClock();
  let renders = 0;
  const scheduler = new RenderScheduler(() => renders++, INTERVAL, clock);
  scheduler.changed();
  clock.advance(0);
  assert.equal(renders, 1);
  clock.advance(1000); // the provider was silent
  scheduler.changed();
  clock.advance(0);
  assert.equal(renders, 2);
});

test('flush renders at once and cancels the pending render', () => {
  const clock = new FakeClock();
  let renders = 0;
  const scheduler = new RenderScheduler(() => renders++, INTERVAL, clock);
  scheduler.changed();
  clock.advance(0);
  scheduler.changed();
  scheduler.flush();
  clock.advance(100);
  assert.equal(renders, 2);
});
