/**
 * When to render a growing answer: never per token. At most one render per `interval` ms, and
 * one within `interval` ms of new text, however long the answer has grown: each render costs
 * about the new text, not the whole (livemd.ts and render.ts's BlockRenderer keep what was
 * finished), so the pace need not slow as the answer grows. Pure: timers are injected.
 */

export interface IClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const browserClock: IClock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: handle => clearTimeout(handle as ReturnType<typeof setTimeout>)
};

export class RenderScheduler {
  private _timer: unknown = null;
  private _last = -Infinity;

  constructor(
    private readonly _render: () => void,
    private readonly _interval: number,
    private readonly _clock: IClock = browserClock
  ) {}

  /** New text arrived. */
  changed(): void {
    if (this._timer !== null) {
      return; // a render is already due; it will show this text too
    }
    const wait = this._last + this._interval - this._clock.now();
    this._timer = this._clock.setTimeout(() => this._fire(), Math.max(0, wait));
  }

  /** Render now (the answer ended), cancelling a pending render. */
  flush(): void {
    if (this._timer !== null) {
      this._clock.clearTimeout(this._timer);
      this._timer = null;
    }
    this._render();
    this._last = this._clock.now();
  }

  dispose(): void {
    if (this._timer !== null) {
      this._clock.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  private _fire(): void {
    this._timer = null;
    this._last = this._clock.now();
    this._render();
  }
}
