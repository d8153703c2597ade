/**
 * The renderer of an answer output: JupyterLab picks it (before its own HTML and Markdown
 * renderers) for any output that carries ANSWER_MIME, trusted or not, and renders the safe Markdown
 * in that data with the rules of render.ts (JupyterLab's highlighting and math, its sanitizer, an
 * inert DOM pass). Everything else renders the output's text/html (answerhtml.ts).
 *
 * Around the answer it adds controls of its own (never from the answer): while it runs, what it is
 * doing and the Stop control (progress.ts); on its code blocks, their actions (codeactions.ts);
 * under an answer that failed, or a request that was refused, Retry.
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { refreshIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { ANSWER_MIME } from './answermime';
import { cellHooks, cellOf } from './cells';
import { addCodeActions } from './codeactions';
import { RenderScheduler } from './coalesce';
import { endingFromEvents, finalMarkdown } from './ending';
import { LiveAnswer, liveAnswers, liveSettings } from './live';
import { LiveMarkdown } from './livemd';
import { CONTROLS_CLASS, Progress } from './progress';
import { allowedImageOrigins, BlockRenderer } from './render';
import { keepInView, unfollow } from './scroll';
import { answerId, warnShape } from './shapes';

export { ANSWER_MIME };

/** On a live answer's renderer; an output area holding one hides the kernel's plain-text
 * fallback of the same answer (style/index.css). */
const LIVE_CLASS = 'jp-cellmage-Live';
const STREAMING_CLASS = 'jp-cellmage-streaming';
/** On an answer that said how it ended (it failed or was refused, with Retry, or was stopped): an
 * output area holding one hides the kernel's one-line error after it (style/index.css), so the
 * ending is said once. */
const ENDING_SAID_CLASS = 'jp-cellmage-EndingSaid';

/** Renderers of live answers whose output was just replaced (a kernel's final display after
 * clear_output): the replacing output, same answer id, takes their blocks over. */
const retired = new Map<string, BlockRenderer>();
const RETIRED_MS = 10000;

/** What a live placeholder whose answer id has the wrong shape shows: a stale answer (it came
 * from a notebook made elsewhere; nothing is asked of the server for it). */
const STALE = finalMarkdown(
  '',
  endingFromEvents(null, {
    error: { code: 'abandoned', message: "This output's answer id is not one this server makes, so the answer cannot be followed." },
    done: { finish_reason: 'cancelled' }
  })
);

export class AnswerRenderer extends Widget implements IRenderMime.IRenderer {
  private readonly _blocks: BlockRenderer;
  private _live: LiveAnswer | null = null;
  private _markdown: LiveMarkdown | null = null;
  private _scheduler: RenderScheduler | null = null;
  private _progress: Progress | null = null;
  /** Our own controls after the answer's blocks (the progress line, or Retry). */
  private _tail: HTMLElement | null = null;
  private _marked = false;

  constructor(options: IRenderMime.IRendererOptions) {
    super();
    // JupyterLab reuses a renderer when a streaming answer's output is replaced: the blocks that
    // did not change keep their DOM.
    this._blocks = new BlockRenderer(
      this.node,
      options,
      nodes => addCodeActions(nodes, this.node),
      () => this._tail
    );
    this.addClass('jp-RenderedHTMLCommon');
    this.addClass('jp-RenderedMarkdown');
    this.addClass('jp-cellmage-Answer');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    // JSON boundary: the mark's data as stored; anything unexpected renders as nothing.
    const mark = model.data[ANSWER_MIME] as any;
    const markdown = typeof mark?.markdown === 'string' ? mark.markdown : '';
    const id = answerId(mark?.answer?.id);
    if (mark?.answer?.live === true) {
      if (id !== null) {
        // A live answer's placeholder: its text comes from the page (its asker) or the server.
        this._follow(id, mark.answer.quiet === true);
        return;
      }
      warnShape('a live answer id', mark.answer.id);
      this._unfollow();
      await this._blocks.render(STALE);
      return;
    }
    this._unfollow();
    const previous = id !== null ? retired.get(id) : undefined;
    if (previous) {
      retired.delete(id!);
      this._blocks.adopt(previous);
    }
    const retry = mark?.failed === true || mark?.problem === true;
    this.toggleClass(ENDING_SAID_CLASS, retry || mark?.stopped === true);
    this._setTail(retry ? this._retryControl(model.metadata) : null);
    await this._blocks.render(markdown);
    if (id !== null) {
      keepInView(id, this.node); // the stored answer in view as the live one was, then let go
      unfollow(id);
    }
  }

  dispose(): void {
    if (this._live !== null) {
      const id = this._live.id;
      retired.set(id, this._blocks);
      setTimeout(() => retired.get(id) === this._blocks && retired.delete(id), RETIRED_MS);
    }
    this._unfollow();
    super.dispose();
  }

  protected onAfterAttach(): void {
    this._markCell();
  }

  private _setTail(tail: HTMLElement | null): void {
    this._tail?.remove();
    this._tail = tail;
    if (tail !== null) {
      this.node.append(tail);
    }
  }

  private _follow(id: string, quiet: boolean): void {
    if (this._live?.id === id) {
      return;
    }
    this._unfollow();
    this.addClass(LIVE_CLASS);
    this._live = liveAnswers.follow(id, quiet);
    this._markdown = new LiveMarkdown(allowedImageOrigins());
    // Each update costs about the new text (livemd.ts), so the pace need not slow as it grows.
    this._scheduler = new RenderScheduler(() => void this._show(), liveSettings.renderInterval);
    this._progress = new Progress(this._live);
    this._setTail(this._progress.node);
    this._live.changed.connect(this._changed, this);
    this._changed();
  }

  private _unfollow(): void {
    this._progress?.dispose();
    this._progress = null;
    if (this._live === null) {
      return;
    }
    this._live.changed.disconnect(this._changed, this);
    liveAnswers.release(this._live.id);
    this._live = null;
    this._markdown = null;
    this._scheduler?.dispose();
    this._scheduler = null;
    this._setTail(null);
    this.removeClass(LIVE_CLASS);
    this._markCell();
  }

  private _changed(): void {
    const live = this._live!;
    this._progress?.update();
    if (live.end !== null) {
      this._progress?.dispose();
      this._progress = null;
      this._setTail(null);
      this._scheduler!.flush();
    } else if (live.text && !live.quiet) {
      this._scheduler!.changed();
    }
    this._markCell();
  }

  /** The live answer as it is now: the text so far, or the whole answer once it ended. */
  private async _show(): Promise<void> {
    const live = this._live;
    if (live === null) {
      return;
    }
    if (live.end !== null) {
      await this._blocks.render(finalMarkdown(live.text, endingFromEvents(live.model, live.end), allowedImageOrigins()));
    } else {
      const markdown = this._markdown!;
      markdown.append(live.text.slice(markdown.text.length));
      await this._blocks.renderBlocks(() => markdown.blocks());
    }
    keepInView(live.id, this.node);
  }

  /** Retry: ask again as this output was asked (the toolbar's outputs carry `cellmage` metadata;
   * a kernel's are run again by the notebook's run command). */
  private _retryControl(metadata: IRenderMime.IMimeModel['metadata']): HTMLElement {
    const row = document.createElement('div');
    row.className = `${CONTROLS_CLASS} jp-cellmage-RetryRow`;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'jp-cellmage-Retry jp-Button jp-mod-styled jp-mod-accept';
    button.title = 'Ask again';
    button.append(refreshIcon.element({ tag: 'span', className: 'jp-cellmage-ButtonIcon' }), document.createTextNode('Retry'));
    button.addEventListener('mousedown', event => event.stopPropagation());
    button.addEventListener('click', event => {
      event.stopPropagation();
      const where = cellOf(this.node);
      if (where !== null && cellHooks.retry !== null) {
        cellHooks.retry(where, metadata?.cellmage !== undefined);
      }
    });
    row.append(button);
    return row;
  }

  /** Every page shows a cell that is answering as busy, whoever asked. (The asker's own page
   * marks its cell itself, in ask.ts.) */
  private _markCell(): void {
    const cell = this.node.closest('.jp-Cell');
    const busy = this._live !== null && !this._live.local && this._live.end === null;
    if (cell === null || (!busy && !this._marked)) {
      return;
    }
    this._marked = busy;
    cell.classList.toggle(STREAMING_CLASS, busy);
    if (busy) {
      cell.setAttribute('aria-busy', 'true');
    } else {
      cell.removeAttribute('aria-busy');
    }
  }
}

export const answerRendererFactory: IRenderMime.IRendererFactory = {
  safe: true, // it sanitizes whatever it is given
  mimeTypes: [ANSWER_MIME],
  defaultRank: 40, // before JupyterLab's Markdown (60) and HTML (50)
  createRenderer: options => new AnswerRenderer(options)
};

const extension: IRenderMime.IExtension = {
  id: 'cellmage-server:answer-renderer',
  description: 'Renders CellMage answers as untrusted Markdown that loads nothing.',
  rendererFactory: answerRendererFactory,
  rank: 40,
  dataType: 'json'
};

export default extension;
