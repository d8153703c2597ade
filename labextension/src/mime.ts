/**
 * The renderer of an answer output: JupyterLab picks it (before its own HTML and Markdown
 * renderers) for any output that carries ANSWER_MIME, trusted or not, and renders the safe Markdown
 * in that data with the rules of render.ts (JupyterLab's highlighting and math, its sanitizer, an
 * inert DOM pass). Everything else renders the output's text/html (answerhtml.ts).
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { ANSWER_MIME } from './answermime';
import { RenderScheduler } from './coalesce';
import { endingFromEvents, finalMarkdown } from './ending';
import { LiveAnswer, liveAnswers, liveSettings } from './live';
import { LiveMarkdown } from './livemd';
import { allowedImageOrigins, BlockRenderer } from './render';
import { answerId, warnShape } from './shapes';

export { ANSWER_MIME };

/** On a live answer's renderer; an output area holding one hides the kernel's plain-text
 * fallback of the same answer (style/base.css). */
const LIVE_CLASS = 'jp-cellmage-Live';
const STREAMING_CLASS = 'jp-cellmage-streaming';

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

  constructor(options: IRenderMime.IRendererOptions) {
    super();
    // JupyterLab reuses a renderer when a streaming answer's output is replaced: the blocks that
    // did not change keep their DOM.
    this._blocks = new BlockRenderer(this.node, options);
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
        this._follow(id);
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
    await this._blocks.render(markdown);
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

  private _follow(id: string): void {
    if (this._live?.id === id) {
      return;
    }
    this._unfollow();
    this.addClass(LIVE_CLASS);
    this._live = liveAnswers.follow(id);
    this._markdown = new LiveMarkdown(allowedImageOrigins());
    // Each update costs about the new text (livemd.ts), so the pace need not slow as it grows.
    this._scheduler = new RenderScheduler(() => void this._show(), liveSettings.renderInterval);
    this._live.changed.connect(this._changed, this);
    this._changed();
  }

  private _unfollow(): void {
    if (this._live === null) {
      return;
    }
    this._live.changed.disconnect(this._changed, this);
    liveAnswers.release(this._live.id);
    this._live = null;
    this._markdown = null;
    this._scheduler?.dispose();
    this._scheduler = null;
    this.removeClass(LIVE_CLASS);
    this._markCell();
  }

  private _changed(): void {
    const live = this._live!;
    if (live.end !== null) {
      this._scheduler!.flush();
    } else if (live.text) {
      this._scheduler!.changed();
    }
    this._markCell();
  }

  /** The live answer as it is now: the text so far, or the whole answer once it ended. */
  private _show(): Promise<void> {
    const live = this._live;
    if (live === null) {
      return Promise.resolve();
    }
    if (live.end !== null) {
      return this._blocks.render(finalMarkdown(live.text, endingFromEvents(live.model, live.end), allowedImageOrigins()));
    }
    const markdown = this._markdown!;
    markdown.append(live.text.slice(markdown.text.length));
    return this._blocks.renderBlocks(() => markdown.blocks());
  }

  /** Every page shows a cell that is answering as busy, whoever asked. (The asker's own page
   * marks its cell itself, in commands.ts.) */
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

  private _marked = false;
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
