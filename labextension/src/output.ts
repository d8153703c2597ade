/**
 * An answer in a code cell's outputs: one `display_data` with the answer as safe Markdown
 * (`text/markdown`, see safemd.ts) and the ANSWER_MIME mark that selects this extension's renderer
 * (mime.ts), replaced in place
 * as the answer grows (at the pace the RenderScheduler allows), with model, usage and timing in
 * its metadata; problems as a themed `stderr` stream output after it. The cell's execution count
 * is left alone.
 */
import { ICodeCellModel } from '@jupyterlab/cells';
import * as nbformat from '@jupyterlab/nbformat';
import { PartialJSONObject } from '@lumino/coreutils';

import { ANSWER_MIME } from './mime';
import { allowedImageOrigins } from './render';
import { safeMarkdown } from './safemd';

export interface IAnswerMeta {
  model?: string;
  persona?: string | null;
  // JSON boundary: the usage event's data.
  usage?: any;
  elapsed_ms?: number;
  finish_reason?: string;
  stopped?: boolean;
  error?: { code: string; message: string };
}

export class AnswerOutput {
  private _index = -1;

  constructor(private readonly _model: ICodeCellModel) {}

  /** Clear the cell's outputs for a new answer. */
  begin(): void {
    this._model.outputs.clear();
    this._index = -1;
  }

  /** Show `text` (the whole answer so far, as the model wrote it) and its metadata. */
  render(text: string, meta: IAnswerMeta): void {
    const output: nbformat.IDisplayData = {
      output_type: 'display_data',
      // Stored as it is shown: a JupyterLab without this extension renders the same safe Markdown.
      data: { 'text/markdown': safeMarkdown(text, allowedImageOrigins()), [ANSWER_MIME]: {} },
      metadata: { cellmage: meta as unknown as PartialJSONObject }
    };
    if (this._index === -1) {
      this._index = this._model.outputs.add(output) - 1;
    } else {
      this._model.outputs.set(this._index, output);
    }
  }

  /** A problem, said so a person knows what to do; themed as an error by JupyterLab. */
  problem(message: string): void {
    this._model.outputs.add({ output_type: 'stream', name: 'stderr', text: message + '\n' });
  }
}
