/**
 * The answers this page shows while they stream: the ones it asked itself (the toolbar) and the
 * ones it follows by id from the server (a collaborator's answer in a shared notebook, a kernel's
 * `%%llm` answer). One feed per answer, whatever number of outputs show it; a followed answer is
 * one connection to the server, closed when no output shows it any more.
 */
import { ISignal, Signal } from '@lumino/signaling';

import { IStreamEnd } from './ending';
import { CellmageRequestError, followAnswer, requestAPI } from './request';
import { answerPath } from './shapes';

export class LiveAnswer {
  text = '';
  model: string | null = null;
  /** The notebook cell it answers in (known once it started). */
  cellId: string | null = null;
  /** How it ended; null while it runs. */
  end: IStreamEnd | null = null;
  /** When this page first knew of it (performance.now()). */
  readonly since = performance.now();
  /** How this page stops it, when it streams it itself (the asker aborts its request). */
  onStop: (() => void) | null = null;

  constructor(
    readonly id: string,
    /** Streamed by this page (the toolbar), not followed. */
    readonly local: boolean,
    /** Shown only once it ended (the `stream` setting off, `%%llm --no-stream`). */
    public quiet = false
  ) {}

  /** Stop it: this page's own request, or, for an answer asked elsewhere, through the server
   * (which stops it for everyone who may: see the README's Teams section). */
  async stop(): Promise<void> {
    if (this.end !== null) {
      return;
    }
    if (this.onStop !== null) {
      this.onStop();
      return;
    }
    await requestAPI(answerPath(this.id, 'cancel'), { method: 'POST' }).catch(() => undefined);
  }

  get changed(): ISignal<LiveAnswer, void> {
    return this._changed;
  }

  /** Its model and cell, as the server's `start` says. */
  started(model: string | null, cellId: string | null): void {
    this.model = model;
    this.cellId = cellId;
    this._changed.emit();
  }

  append(text: string): void {
    if (this.end === null && text) {
      const first = !this.text;
      this.text += text;
      if (!this.quiet || first) {
        this._changed.emit(); // (a quiet answer says once that text has come)
      }
    }
  }

  finish(end: IStreamEnd): void {
    if (this.end === null) {
      this.end = end;
      this._changed.emit();
    }
  }

  private _changed = new Signal<LiveAnswer, void>(this);
}

interface IHeld {
  answer: LiveAnswer;
  holders: number;
  controller: AbortController | null;
}

export class LiveAnswers {
  private _held = new Map<string, IHeld>();
  private _cells = new Signal<LiveAnswers, void>(this);

  /** Some cell started or stopped answering (the toolbar's run/stop state follows it). */
  get cellsChanged(): ISignal<LiveAnswers, void> {
    return this._cells;
  }

  /** An answer this page streams: the asker feeds it; release it when it ended. */
  local(id: string, cellId: string | null, model: string | null, quiet = false): LiveAnswer {
    const answer = new LiveAnswer(id, true, quiet);
    answer.cellId = cellId;
    answer.model = model;
    this._held.set(id, { answer, holders: 1, controller: null });
    this._watch(answer);
    return answer;
  }

  /** Follow an answer by id (one connection per answer, opened on the first follow). */
  follow(id: string, quiet = false): LiveAnswer {
    const held = this._held.get(id);
    if (held) {
      held.holders++;
      held.answer.quiet = held.answer.quiet || quiet;
      return held.answer;
    }
    const answer = new LiveAnswer(id, false, quiet);
    const controller = new AbortController();
    this._held.set(id, { answer, holders: 1, controller });
    this._watch(answer);
    void this._follow(answer, controller.signal);
    return answer;
  }

  /** One holder less; the last one closes the follow. */
  release(id: string): void {
    const held = this._held.get(id);
    if (held && --held.holders <= 0) {
      this._held.delete(id);
      held.controller?.abort();
      if (held.answer.end === null) {
        this._cells.emit();
      }
    }
  }

  /** The running answer of a notebook cell that this page knows of, if any. */
  runningIn(cellId: string): LiveAnswer | null {
    for (const { answer } of this._held.values()) {
      if (answer.cellId === cellId && answer.end === null) {
        return answer;
      }
    }
    return null;
  }

  private _watch(answer: LiveAnswer): void {
    let running = answer.end === null;
    let cell = answer.cellId;
    answer.changed.connect(() => {
      if (running !== (answer.end === null) || cell !== answer.cellId) {
        running = answer.end === null;
        cell = answer.cellId;
        this._cells.emit();
      }
    });
  }

  private async _follow(answer: LiveAnswer, signal: AbortSignal): Promise<void> {
    const end: IStreamEnd = {};
    try {
      await followAnswer(
        answer.id,
        ({ event, data }) => {
          if (event === 'start') {
            answer.started(data.model ?? null, data.cell_id ?? null);
          } else if (event === 'delta') {
            answer.append(data.text);
          } else if (event === 'usage') {
            end.usage = data;
          } else if (event === 'error') {
            end.error = data;
          } else if (event === 'done') {
            end.done = data;
            answer.finish(end);
          }
        },
        signal
      );
      if (answer.end === null && !signal.aborted) {
        answer.finish({ ...end, error: end.error ?? { code: 'disconnected', message: '' } });
      }
    } catch (error) {
      if (signal.aborted) {
        return;
      }
      const gone = error instanceof CellmageRequestError && error.status === 404;
      answer.finish({
        ...end,
        error: gone
          ? { code: 'abandoned', message: 'This server has no record of how the answer ended (it restarted since).' }
          : { code: 'disconnected', message: (error as Error).message ?? '' }
      });
    }
  }
}

/** The page's live answers: shared by the commands and every answer renderer. */
export const liveAnswers = new LiveAnswers();

/** How often a live answer re-renders at most (the plugin's `renderInterval` setting). */
export const liveSettings = { renderInterval: 50 };
