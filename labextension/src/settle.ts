/**
 * Answers left live in a notebook: a cell whose output is still an answer's live placeholder when
 * the notebook opens, because the page that asked closed (or the kernel that asked died) before
 * the answer ended. If the answer still runs, its renderer follows it. If it ended, the server
 * writes it into the shared notebook itself under real-time collaboration (`settle`); otherwise
 * this page writes it from the server's record (or, when the server restarted since, from the
 * notebook's conversation), marked as abandoned like a stopped answer.
 */
import { ICodeCellModel } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';

import { ANSWER_MIME } from './answermime';
import { answerBundle, endingFromEvents, IStreamEnd } from './ending';
import { AnswerOutput, answerIdOf, IAnswerMeta } from './output';
import { allowedImageOrigins } from './render';
import { CellmageRequestError, IAnswerRecord, IConversation, requestAPI } from './request';
import { answerPath, warnShape } from './shapes';

const GONE: IStreamEnd = {
  error: {
    code: 'abandoned',
    message: 'The page or kernel that asked for this answer closed before the answer ended.'
  },
  done: { finish_reason: 'cancelled' }
};

/** The live placeholders in a notebook: (cell, answer id). */
function livePlaceholders(panel: NotebookPanel): [ICodeCellModel, string][] {
  const found: [ICodeCellModel, string][] = [];
  for (const cell of panel.content.model?.cells ?? []) {
    if (cell.type !== 'code') {
      continue;
    }
    const outputs = (cell as ICodeCellModel).outputs;
    for (let i = 0; i < outputs.length; i++) {
      const output = outputs.get(i).toJSON();
      // JSON boundary: an output as stored.
      const mark = (output.data as any)?.[ANSWER_MIME]?.answer;
      if (mark?.live !== true) {
        continue;
      }
      const id = answerIdOf(output);
      if (id === null) {
        warnShape('a live answer id', mark.id); // its renderer shows it as a stale answer
      } else {
        found.push([cell as ICodeCellModel, id]);
      }
    }
  }
  return found;
}

/** Write what the server knows of the notebook's abandoned answers into their cells. */
export async function settleAbandoned(panel: NotebookPanel): Promise<number> {
  let settled = 0;
  let conversation: IConversation | null = null;
  for (const [cell, id] of livePlaceholders(panel)) {
    let record: IAnswerRecord | null = null;
    try {
      record = await requestAPI<IAnswerRecord>(answerPath(id));
    } catch (error) {
      if (!(error instanceof CellmageRequestError && error.status === 404)) {
        continue; // the server is not reachable now: the renderer says so; try at the next open
      }
    }
    if (record?.running) {
      continue; // its renderer follows it
    }
    if (record !== null) {
      const written = await requestAPI<{ written: boolean }>(answerPath(id, 'settle'), { method: 'POST' }).catch(
        () => ({ written: false })
      );
      if (written.written) {
        continue; // the server wrote it into the shared notebook, for every collaborator
      }
    }
    let text = record?.text ?? '';
    const end: IStreamEnd = record?.ending ?? GONE;
    if (record === null) {
      // The server restarted since: the conversation kept the cell's turn, if it was stored.
      conversation =
        conversation ??
        (await requestAPI<IConversation>(`conversations/${encodeURIComponent(panel.context.path)}`).catch(() => null));
      text = conversation?.turns.find(t => t.cell_id === cell.id)?.answer ?? '';
    }
    const meta: IAnswerMeta = {
      model: record?.model ?? undefined,
      usage: end.usage ?? undefined,
      elapsed_ms: end.done?.elapsed_ms,
      finish_reason: end.done?.finish_reason,
      error: end.error ?? undefined
    };
    const ending = endingFromEvents(record?.model, end);
    if (ending.stopped) {
      meta.stopped = true;
    }
    new AnswerOutput(cell).render(answerBundle(text, ending, allowedImageOrigins(), id), meta);
    settled++;
  }
  if (settled) {
    panel.context.model.dirty = true;
  }
  return settled;
}
