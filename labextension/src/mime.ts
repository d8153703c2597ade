/**
 * The renderer of an answer output: JupyterLab picks it (before its own HTML and Markdown
 * renderers) for any output that carries ANSWER_MIME, trusted or not, and renders the safe Markdown
 * in that data with the rules of render.ts (JupyterLab's highlighting and math, its sanitizer, an
 * inert DOM pass). Everything else renders the output's text/html (answerhtml.ts).
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { BlockRenderer } from './render';

import { ANSWER_MIME } from './answermime';

export { ANSWER_MIME };

export class AnswerRenderer extends Widget implements IRenderMime.IRenderer {
  private readonly _blocks: BlockRenderer;

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
    const markdown = (model.data[ANSWER_MIME] as any)?.markdown;
    await this._blocks.render(typeof markdown === 'string' ? markdown : '');
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
