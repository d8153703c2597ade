// Render scheduling with a fake clock: never per token, and fewer renders as the text grows.
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

function stream(chunks: number, everyMs: number, charsPerChunk = 4): number {
  const clock = new FakeClock();
  let renders = 0;
  const scheduler = new RenderScheduler(() => renders++, 50, 20, clock);
  for (let i = 1; i <= chunks; i++) {
    scheduler.changed(i * charsPerChunk);
    clock.advance(everyMs);
  }
  scheduler.flush();
  return renders;
}

test('many tokens in one interval make one render', () => {
  const clock = new FakeClock();
  let renders = 0;
  const scheduler = new RenderScheduler(() => renders++, 50, 20, clock);
  for (let i = 0; i < 100; i++) {
    scheduler.changed(i);
  }
  clock.advance(60);
  assert.equal(renders, 1);
});

test('never more than one render per interval while streaming', () => {
  const renders = stream(4000, 1); // 4,000 chunks over 4 s
  assert.ok(renders <= 4000 / 50 + 1, `${renders} renders`);
});

test('render work stays linear: twice the answer, about twice the rendered characters', () => {
  const work = (chunks: number) => {
    const clock = new FakeClock();
    let rendered = 0;
    let length = 0;
    const scheduler = new RenderScheduler(() => (rendered += length), 50, 20, clock);
    for (let i = 0; i < chunks; i++) {
      length += 4;
      scheduler.changed(length);
      clock.advance(1);
    }
    scheduler.flush();
    return rendered;
  };
  const ratio = work(8000) / work(4000);
  assert.ok(ratio < 2.3, `ratio ${ratio}`);
});

test('flush renders at once and cancels the pending render', () => {
  const clock = new FakeClock();
  let renders = 0;
  const scheduler = new RenderScheduler(() => renders++, 50, 20, clock);
  scheduler.changed(10);
  scheduler.flush();
  clock.advance(100);
  assert.equal(renders, 1);
});
