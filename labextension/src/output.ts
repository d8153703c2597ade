/**
 * An answer in a code cell's outputs: one `display_data` with the answer as HTML any renderer
 * shows safely (`text/html`, answerhtml.ts) and, under the ANSWER_MIME mark that selects this
 * extension's renderer (mime.ts), as safe Markdown (safemd.ts); replaced in place
 * as the answer grows (at the pace the RenderScheduler allows), with model, usage and timing in
 * its metadata; problems as a themed `stderr` stream output after it. The cell's execution count
 * is left alone.
 */
import { ICodeCellModel } from '@jupyterlab/cells';
import * as nbformat from '@jupyterlab/nbformat';
import { PartialJSONObject } from '@lumino/coreutils';

import { IAnswerBundle } from './ending';

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

  /** Clear the cell's outputs (and its execution count: the kernel did not run it) for a new answer. */
  begin(): void {
    this._model.outputs.clear();
    this._model.executionCount = null;
    this._index = -1;
  }

  /** Show the answer so far (see ending.ts: answerBundle, liveBundle) and its metadata. */
  render(bundle: IAnswerBundle, meta: IAnswerMeta): void {
    const output: nbformat.IDisplayData = {
      output_type: 'display_data',
      data: bundle as unknown as nbformat.IMimeBundle,
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
