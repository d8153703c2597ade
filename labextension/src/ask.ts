/**
 * Asking: one code cell's text as the prompt, its answer streamed into the cell's outputs without
 * the kernel. Called by the ✦ control, the command and its shortcut, Retry, and every run command
 * on a prompt cell (executor.ts). One answer per cell on this page; the server refuses a second
 * one asked elsewhere (409 cell_busy).
 */
import { Notification } from '@jupyterlab/apputils';
import { Cell, ICodeCellModel } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { markPrompt } from './cells';
import { ContextRefused, pageContext } from './context';
import { answerBundleInSteps, contextSummary, endingFromEvents, IEnding, IStreamEnd, liveMarker } from './ending';
import { FlagError, splitCell } from './flags';
import { LiveAnswer, liveAnswers } from './live';
import { AnswerOutput, IAnswerMeta } from './output';
import { allowedImageOrigins } from './render';
import { CellmageRequestError, requestAPI, streamAnswer } from './request';
import { follow, unfollow } from './scroll';
import { answerPath, cellId, warnShape } from './shapes';

/** The plugin's settings (schema/plugin.json). */
export interface ICellmageSettings {
  model: string;
  persona: string;
  temperature: number | null;
  stream: boolean;
  renderInterval: number;
}

export const STREAMING_CLASS = 'jp-cellmage-streaming';

const NOT_ENABLED = 'The cellmage server extension is not enabled on this Jupyter server.';

/** A request that failed before its answer started, said so a person knows what to do (no HTTP
 * status: the server's message says what it means). */
export function describeFailure(error: unknown): string {
  if (error instanceof CellmageRequestError) {
    if (error.message === NOT_ENABLED) {
      return `${NOT_ENABLED} Ask whoever runs it to install and enable cellmage-server, then retry.`;
    }
    const hint = error.status === 404 ? ' CellMage: Choose Model lists the models of this server.' : '';
    return error.message + hint;
  }
  if (error instanceof ServerConnection.NetworkError) {
    return 'This page cannot reach the Jupyter server. Check that it is running and that the network is up, then retry.';
  }
  return `The answer failed: ${(error as Error).message ?? error}`;
}

/** How long a stop waits for the server to end the answer before this page lets go of it. */
const STOP_PATIENCE_MS = 5000;

/** One answer this page is asking for. */
interface IRunning {
  controller: AbortController;
  id: string | null; // the answer's id, from its start
  fallback: number | null; // the abort that follows a stop the server did not answer in time
}

export interface IAskOptions {
  /** Record the cell as a prompt (asked from its control): run commands answer it from then on. */
  mark?: boolean;
}

export class Asker {
  private readonly _running = new Map<string, IRunning>();
  private readonly _changed = new Signal<Asker, void>(this);

  constructor(private readonly _settings: () => ICellmageSettings) {}

  /** A cell started or stopped answering on this page. */
  get changed(): ISignal<Asker, void> {
    return this._changed;
  }

  get size(): number {
    return this._running.size;
  }

  /** Whether this page is asking for the cell (by its model id). */
  isAsking(cellModelId: string): boolean {
    return this._running.has(cellModelId);
  }

  /** Stop this page's answer in the cell; false if it has none. Once the answer started, the
   * server is asked to stop it and sends its end down this page's stream, so the server knows this
   * page writes the stored answer: were the page to hang up instead, the server could not tell a
   * stop from a closed page, and under real-time collaboration it would write the answer into
   * the shared cell too (two outputs). A second press, or a server that does not answer within
   * STOP_PATIENCE_MS, lets go at once. */
  stop(cellModelId: string): boolean {
    const running = this._running.get(cellModelId);
    if (running === undefined) {
      return false;
    }
    if (running.id === null || running.fallback !== null) {
      running.controller.abort();
      return true;
    }
    const { controller } = running;
    running.fallback = window.setTimeout(() => controller.abort(), STOP_PATIENCE_MS);
    void requestAPI(answerPath(running.id, 'cancel'), { method: 'POST' }).catch(() => controller.abort());
    return true;
  }

  /** Stop every answer of this page, as `stop` does. */
  stopAll(): void {
    for (const cellModelId of [...this._running.keys()]) {
      this.stop(cellModelId);
    }
  }

  /** Ask with the cell's text; resolves when the answer ended: true if it was answered whole. */
  async ask(panel: NotebookPanel, cell: Cell, options: IAskOptions = {}): Promise<boolean> {
    const model = cell.model as ICodeCellModel;
    if (this._running.has(model.id)) {
      return false;
    }
    const output = new AnswerOutput(model);
    const prefs = this._settings();
    let parsed;
    try {
      parsed = splitCell(model.sharedModel.getSource());
    } catch (error) {
      output.begin();
      output.problem(error instanceof FlagError ? error.message : String(error));
      return false;
    }
    const { flags, prompt } = parsed;
    if (!prompt.trim()) {
      output.begin();
      output.problem('The cell is empty: write the prompt (under a %%llm line, if you use one).');
      return false;
    }
    if (options.mark) {
      markPrompt(model);
    }
    // What of the notebook goes with it (--cells, --error, --snippet): the page's cells as shown
    let context;
    try {
      const cells = panel.content.widgets.map(c => c.model.toJSON());
      context = pageContext(flags, cells, panel.content.widgets.indexOf(cell));
    } catch (error) {
      if (!(error instanceof ContextRefused)) {
        throw error;
      }
      output.begin();
      output.problem(error.message);
      return false;
    }
    // The notebook is the conversation, the cell its turn (shared with the %%llm magic).
    const body: Record<string, unknown> = { prompt, stream: true, conversation: panel.context.path };
    const id = cellId(model.id);
    if (id !== null) {
      body.cell_id = id;
    } else {
      warnShape('a cell id', model.id); // answered as a turn of no cell: a re-run adds one
    }
    body.history = flags.history ?? true;
    if (context !== undefined) {
      body.context = context;
    }
    // CellMage's --no-history and --no-rollback (the grammar is the magic's: flags.ts)
    if (flags.remember === false) {
      body.remember = false;
    }
    if (flags.rollback === false) {
      body.rollback = false;
    }
    if (flags.params) {
      body.params = flags.params; // checked by the server (its 400 says which may not be set)
    }
    const chosen = {
      model: flags.model ?? (prefs.model || undefined),
      persona: flags.persona ?? (prefs.persona || undefined),
      temperature: flags.temperature ?? prefs.temperature ?? undefined,
      max_tokens: flags.max_tokens
    };
    for (const [key, value] of Object.entries(chosen)) {
      if (value !== undefined) {
        body[key] = value;
      }
    }
    const live = flags.stream ?? prefs.stream;

    const controller = new AbortController();
    const running: IRunning = { controller, id: null, fallback: null };
    this._running.set(model.id, running);
    // Already shown busy by the renderer of an answer asked elsewhere (then a refusal keeps it)
    const busyBefore = cell.node.getAttribute('aria-busy') === 'true';
    cell.node.classList.add(STREAMING_CLASS);
    cell.node.setAttribute('aria-busy', 'true');
    this._changed.emit();

    let text = '';
    let answer: LiveAnswer | null = null;
    const meta: IAnswerMeta = {};
    const ending: IEnding = { model: chosen.model };
    const end: IStreamEnd = {};
    const started = performance.now();
    const origins = allowedImageOrigins();
    let failure: string | null = null;
    let busyElsewhere: string | null = null;
    try {
      await streamAnswer(
        body,
        ({ event, data }) => {
          if (event === 'delta') {
            text += data.text;
            answer?.append(data.text);
          } else if (event === 'start') {
            meta.model = ending.model = data.model;
            meta.persona = data.persona;
            ending.context = contextSummary(data.context) || null; // said in the status line
            // The cell gets the answer's placeholder once; this page's renderer and every other
            // page's follow the answer by its id until the stored answer replaces it.
            answer = liveAnswers.local(data.id, model.id, data.model, !live);
            running.id = data.id;
            answer.onStop = () => this.stop(model.id);
            follow(data.id, cell.node);
            output.begin();
            output.render(liveMarker(data.id, !live), meta);
          } else if (event === 'usage') {
            meta.usage = end.usage = data;
          } else if (event === 'error') {
            meta.error = end.error = data;
            if (data.code === 'cancelled') {
              meta.stopped = true;
            }
          } else if (event === 'done') {
            end.done = data;
            meta.finish_reason = data.finish_reason;
            meta.elapsed_ms = data.elapsed_ms;
          }
        },
        controller.signal
      );
      if (!end.done && !end.error) {
        end.error = { code: 'disconnected', message: '' }; // the stream ended without its last event
      }
    } catch (error) {
      if (controller.signal.aborted) {
        meta.stopped = true;
        end.error = end.error ?? { code: 'cancelled', message: '' };
      } else if (error instanceof CellmageRequestError && error.status === 409) {
        busyElsewhere = error.message; // another page's or a kernel's answer: leave the cell alone
      } else if (answer !== null) {
        end.error = { code: 'disconnected', message: '' };
      } else {
        failure = describeFailure(error);
      }
    } finally {
      meta.elapsed_ms = meta.elapsed_ms ?? Math.round(performance.now() - started);
      end.done = end.done ?? { elapsed_ms: meta.elapsed_ms };
      if (end.error) {
        meta.error = end.error;
      }
      Object.assign(ending, endingFromEvents(ending.model, end));
      const id = (answer as LiveAnswer | null)?.id;
      if (id !== undefined) {
        output.render(await answerBundleInSteps(text, ending, origins, id), meta);
        (answer as LiveAnswer | null)?.finish(end);
        liveAnswers.release(id);
      } else if (failure) {
        output.begin();
        output.problem(failure);
      }
      if (id !== undefined && !cell.node.isConnected) {
        unfollow(id); // no renderer will show the stored answer now
      }
      if (running.fallback !== null) {
        window.clearTimeout(running.fallback);
      }
      this._running.delete(model.id);
      if (busyElsewhere === null || !busyBefore) {
        // (Refused while the cell's renderer shows another's running answer: that stays shown.)
        cell.node.classList.remove(STREAMING_CLASS);
        cell.node.removeAttribute('aria-busy');
      }
      if (id !== undefined) {
        panel.context.model.dirty = true;
      }
      this._changed.emit();
      if (busyElsewhere !== null) {
        Notification.warning(`CellMage: ${busyElsewhere}`, { autoClose: 8000 });
      }
    }
    return ending.error_code === null && !ending.stopped && failure === null && busyElsewhere === null;
  }
}
