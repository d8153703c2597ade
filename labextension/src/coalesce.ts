/**
 * When to render a growing answer: never per token. At most one render per `interval` ms, and
 * the interval grows with the text's length (`msPerKChar` per 1,000 characters), so the total
 * rendering work of a long answer stays linear in its length instead of quadratic (each render
 * costs about its length; the number of renders falls as it grows). Pure: timers are injected.
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
    private readonly _msPerKChar = 20,
    private readonly _clock: IClock = browserClock
  ) {}

  /** The gap wanted after a render of `length` characters. */
  gap(length: number): number {
    return Math.max(this._interval, (length / 1000) * this._msPerKChar);
  }

  /** New text arrived (the answer is now `length` characters long). */
  changed(length: number): void {
    if (this._timer !== null) {
      return; // a render is already due; it will show this text too
    }
    const wait = this._last + this.gap(length) - this._clock.now();
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
