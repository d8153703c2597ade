/**
 * The renderer of an answer output: JupyterLab picks it (before its own Markdown renderer) for any
 * output that carries ANSWER_MIME, trusted or not, and renders the output's `text/markdown` with
 * the rules of render.ts. A JupyterLab without this extension renders the same `text/markdown`
 * itself, which is why that Markdown is made safe before it is stored (safemd.ts).
 */
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { renderAnswer } from './render';

/** Marks an output as an answer of this extension; its data is a small JSON object. */
export const ANSWER_MIME = 'application/vnd.cellmage.answer+json';

export class AnswerRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(private readonly _options: IRenderMime.IRendererOptions) {
    super();
    this.addClass('jp-RenderedHTMLCommon');
    this.addClass('jp-RenderedMarkdown');
    this.addClass('jp-cellmage-Answer');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const markdown = model.data['text/markdown'];
    await renderAnswer(this.node, typeof markdown === 'string' ? markdown : '', this._options);
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
