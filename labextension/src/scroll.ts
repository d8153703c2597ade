/**
 * The answer follows the eye: while an answer this page asked for grows, its end is kept in view,
 * as chat panes do, until the person scrolls (wheel, touch, a scroll key, the scrollbar); from then
 * on the page never moves for that answer. An answer whose cell is out of view when it starts (a
 * later prompt of Run All, after the person scrolled elsewhere) is not followed at all.
 *
 * "Scrolled" is the person's input, not a `scroll` event: JupyterLab's windowing and the browser's
 * scroll anchoring move the notebook by themselves as cells are measured.
 */

/** Room kept under the answer's end, in pixels. */
const MARGIN = 16;
const SCROLL_KEYS = new Set(['PageUp', 'PageDown', 'Home', 'End', 'ArrowUp', 'ArrowDown', ' ']);

function scrollerOf(node: HTMLElement): HTMLElement | null {
  for (let e = node.parentElement; e !== null; e = e.parentElement) {
    const overflow = getComputedStyle(e).overflowY;
    if ((overflow === 'auto' || overflow === 'scroll') && e.scrollHeight > 0) {
      return e;
    }
  }
  return null;
}

class Follow {
  private _stopped = false;
  private readonly _events: [string, (event: Event) => void][];

  constructor(private readonly _scroller: HTMLElement) {
    const stop = () => this.stop();
    const key = (event: Event) => {
      const target = event.target as HTMLElement | null;
      // Keys typed into an editor move its cursor; elsewhere these keys scroll the notebook
      if (SCROLL_KEYS.has((event as KeyboardEvent).key) && !target?.closest('.cm-editor, input, textarea')) {
        this.stop();
      }
    };
    const press = (event: Event) => {
      if (event.target === this._scroller) {
        this.stop(); // on the scrollbar
      }
    };
    this._events = [
      ['wheel', stop],
      ['touchmove', stop],
      ['keydown', key],
      ['mousedown', press]
    ];
    for (const [name, handler] of this._events) {
      this._scroller.addEventListener(name, handler, { passive: true, capture: true });
    }
  }

  get stopped(): boolean {
    return this._stopped;
  }

  /** Scroll just enough that the end of `node` is in view. */
  keep(node: HTMLElement): void {
    if (this._stopped || !node.isConnected) {
      return;
    }
    const bottom = node.getBoundingClientRect().bottom + MARGIN;
    const view = this._scroller.getBoundingClientRect();
    if (bottom > view.bottom) {
      this._scroller.scrollTop += Math.ceil(bottom - view.bottom);
    }
  }

  stop(): void {
    if (!this._stopped) {
      this._stopped = true;
      for (const [name, handler] of this._events) {
        this._scroller.removeEventListener(name, handler, { capture: true });
      }
    }
  }
}

const following = new Map<string, Follow>();

/** Follow the answer `id` asked from the cell `cellNode`, if that cell is in view now. */
export function follow(id: string, cellNode: HTMLElement): void {
  const scroller = scrollerOf(cellNode);
  if (scroller === null || following.has(id)) {
    return;
  }
  const view = scroller.getBoundingClientRect();
  const cell = cellNode.getBoundingClientRect();
  if (cell.bottom < view.top || cell.top > view.bottom) {
    return; // the person is looking elsewhere: leave the page where it is
  }
  following.set(id, new Follow(scroller));
}

/** After a render of the answer `id` into `node`: keep its end in view, if followed. */
export function keepInView(id: string, node: HTMLElement): void {
  following.get(id)?.keep(node);
}

/** The answer ended (or its output went away): stop following it. */
export function unfollow(id: string): void {
  following.get(id)?.stop();
  following.delete(id);
}
