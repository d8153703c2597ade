/**
 * An answer in a code cell's outputs: one `display_data`, written twice. When the answer starts,
 * a live placeholder (ending.ts: liveMarker) that every page showing the notebook renders by
 * following the answer (mime.ts, live.ts); when it ends, the stored answer (answerBundle): HTML
 * any renderer shows safely and, under the ANSWER_MIME mark, safe Markdown, with model, usage and
 * timing in its metadata. So the notebook model (and, under real-time collaboration, every
 * collaborator and the document store) gets the answer once, not once per update. A request
 * refused before its answer started is an output of its own (ending.ts: problemBundle), rendered
 * by this extension as text that wraps at word boundaries, with Retry.
 */
import { ICodeCellModel } from '@jupyterlab/cells';
import * as nbformat from '@jupyterlab/nbformat';
import { PartialJSONObject } from '@lumino/coreutils';

import { ANSWER_MIME } from './answermime';
import { IAnswerBundle, problemBundle } from './ending';
import { answerId } from './shapes';

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

/** The answer id an output's ANSWER_MIME data carries, if it carries one of the right shape (an
 * output may come from a notebook made anywhere). */
export function answerIdOf(output: nbformat.IOutput): string | null {
  // JSON boundary: an output as stored.
  return answerId((output.data as any)?.[ANSWER_MIME]?.answer?.id);
}

export class AnswerOutput {
  constructor(private readonly _model: ICodeCellModel) {}

  /** Clear the cell's outputs (and its execution count: the kernel did not run it) for a new answer. */
  begin(): void {
    this._model.outputs.clear();
    this._model.executionCount = null;
  }

  /** Write the answer's output (see ending.ts: liveMarker, answerBundle) with its metadata: in
   * place of the output of the same answer id, wherever it is now (a collaborator may have
   * added or removed outputs meanwhile), else after the outputs. */
  render(bundle: IAnswerBundle, meta: IAnswerMeta): void {
    const output: nbformat.IDisplayData = {
      output_type: 'display_data',
      data: bundle as unknown as nbformat.IMimeBundle,
      metadata: { cellmage: meta as unknown as PartialJSONObject }
    };
    const id = answerIdOf(output);
    const outputs = this._model.outputs;
    for (let i = 0; id !== null && i < outputs.length; i++) {
      if (answerIdOf(outputs.get(i).toJSON()) === id) {
        outputs.set(i, output);
        return;
      }
    }
    outputs.add(output);
  }

  /** A problem, said so a person knows what to do. */
  problem(message: string): void {
    this._model.outputs.add({
      output_type: 'display_data',
      data: problemBundle(message) as unknown as nbformat.IMimeBundle,
      metadata: { cellmage: { problem: true } }
    });
  }
}
