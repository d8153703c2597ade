/**
 * "Explain this error": every error output of a code cell gets a button (and the command
 * `cellmage:explain-error` on the active cell) that inserts a prompt cell below the failing cell,
 * `%%llm --cells 1 --error` + "Explain this error and fix the code.", and asks it: the answer sees
 * the failing cell's code and its traceback (context.ts), from the page, so it works with any
 * kernel language and no magic loaded. The prompt cell records the failing cell's id in its
 * metadata (`cellmage.target`), and its answer's code blocks offer "Replace the failing cell's
 * code" on that cell; the id is read back as untrusted input (an nbformat id, a cell of this
 * notebook, plain code) before anything is replaced. Under the ModuleNotFoundError of CellMage's own
 * load line, a hint says what to write instead.
 */
import { Cell } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';

import { isMagicCell, isPromptCell, METADATA_KEY } from './cells';
import { ICodeActionContext, registerCodeAction, replaceAction } from './codeactions';
import { cellmageHint } from './context';
import { askIcon } from './icons';
import { cellId, warnShape } from './shapes';

export const EXPLAIN_PROMPT = '%%llm --cells 1 --error\nExplain this error and fix the code.';
export const EXPLAIN_CLASS = 'jp-cellmage-Explain';

/** Whether the cell has an error output. */
export function hasError(cell: Cell): boolean {
  const outputs = cell.model.type === 'code' ? (cell as any).model.outputs : null; // (a code cell's)
  if (!outputs) {
    return false;
  }
  for (let i = 0; i < outputs.length; i++) {
    if (outputs.get(i).type === 'error') {
      return true;
    }
  }
  return false;
}

/** The failing cell a prompt cell explains: its `cellmage.target`, checked, found in the notebook. */
export function targetOf(panel: NotebookPanel, prompt: Cell): Cell | null {
  // JSON boundary: cell metadata as stored in the notebook.
  const meta = prompt.model.getMetadata(METADATA_KEY) as any;
  const raw = meta !== null && typeof meta === 'object' ? meta.target : undefined;
  if (raw === undefined) {
    return null;
  }
  const id = cellId(raw);
  if (id === null) {
    warnShape('a target cell id', raw);
    return null;
  }
  const target = panel.content.widgets.find(c => c.model.id === id);
  return target && target !== prompt && target.model.type === 'code' && !isPromptCell(target.model) && !isMagicCell(target.model)
    ? target
    : null;
}

/** Insert the explaining prompt cell below `failing`; resolves to it (null if it cannot be made). */
export function insertExplainCell(panel: NotebookPanel, failing: Cell): Cell | null {
  const notebook = panel.content;
  const index = notebook.widgets.indexOf(failing);
  const target = cellId(failing.model.id);
  if (index === -1 || notebook.model === null || target === null) {
    return null;
  }
  notebook.model.sharedModel.insertCell(index + 1, {
    cell_type: 'code',
    source: EXPLAIN_PROMPT,
    metadata: { [METADATA_KEY]: { prompt: true, target } }
  });
  notebook.activeCellIndex = index + 1;
  notebook.deselectAll();
  const cell = notebook.widgets[index + 1] ?? null;
  void notebook.scrollToItem(index + 1, 'auto');
  return cell;
}

/** Code blocks of an explaining prompt's answer replace the failing cell's code. */
export function registerExplainActions(): void {
  const failing = ({ where }: ICodeActionContext): Cell | null => (where === null ? null : targetOf(where.panel, where.cell));
  registerCodeAction(replaceAction('replace-target', "Replace the failing cell's code", failing), 'insert-below');
}

/** Give each error output of the notebook's code cells its "Explain this error" button. */
/** The error name of the %%llm magic's one-line ending (magics.py) and the class its output gets. */
const KERNEL_ENDING = 'AnswerFailed';
const KERNEL_ENDING_CLASS = 'jp-cellmage-KernelEnding';

export function addExplainButtons(panel: NotebookPanel, explain: (cell: Cell) => void): void {
  const notebook = panel.content;
  const watched = new WeakSet<Cell>();
  const decorate = (cell: Cell) => {
    if (cell.isDisposed || cell.model.type !== 'code') {
      return;
    }
    const outputs = (cell as any).model.outputs;
    const area = (cell as any).outputArea;
    if (!outputs || !area) {
      return;
    }
    for (let i = 0; i < outputs.length; i++) {
      // Under the traceback, inside the output (its row beside the prompt would squeeze it)
      const child: HTMLElement | undefined = area.widgets[i]?.node;
      const host: HTMLElement | null | undefined = child?.querySelector('.jp-OutputArea-output') ?? child;
      if (outputs.get(i).type !== 'error' || !host || host.querySelector(`.${EXPLAIN_CLASS}`)) {
        continue;
      }
      if (outputs.get(i).toJSON().ename === KERNEL_ENDING) {
        // The magic's one line after its answer (magics.py's AnswerFailed): the answer says how it
        // ended, with Retry, and this line is hidden under it (style/index.css); nothing to explain.
        child!.classList.add(KERNEL_ENDING_CLASS);
        continue;
      }
      const button = document.createElement('button');
      button.type = 'button';
      button.className = `${EXPLAIN_CLASS} jp-Button jp-mod-styled jp-mod-minimal`;
      button.title = 'Ask the LLM to explain this error and fix the code, in a new cell below';
      button.append(askIcon.element({ tag: 'span', className: 'jp-cellmage-ButtonIcon' }), document.createTextNode('Explain this error'));
      button.addEventListener('mousedown', event => event.stopPropagation());
      button.addEventListener('click', event => {
        event.stopPropagation();
        explain(cell);
      });
      host.append(button);
      const hint = cellmageHint(outputs.get(i).toJSON());
      if (hint !== null) {
        const line = document.createElement('div');
        line.className = 'jp-cellmage-Hint';
        line.textContent = hint;
        host.append(line);
      }
    }
  };
  const watch = () => {
    for (const cell of notebook.widgets) {
      if (cell.model.type === 'code' && !watched.has(cell)) {
        watched.add(cell);
        // Output widgets are made in the output area's own handler of the change: look after it
        (cell as any).model.outputs.changed.connect(() => requestAnimationFrame(() => decorate(cell)));
        void cell.ready.then(() => decorate(cell));
      }
    }
  };
  const changed = () => requestAnimationFrame(watch);
  notebook.model?.cells.changed.connect(changed);
  notebook.modelChanged.connect(() => {
    notebook.model?.cells.changed.connect(changed);
    changed();
  });
  watch();
}
