/**
 * The ask control of every code cell, in the cell's left margin beside its prompt (`[ ]:`), where
 * no text of the cell can run under it: ✦ asks, and while the cell answers it is the stop control.
 * JupyterLab hides a cell's toolbar when the cell's first line runs under it and shows none on a
 * cell that is not selected; this control shows on the active cell, on any cell under the pointer,
 * always on a prompt cell and always while a cell answers, whatever its text (JupyterLab and
 * Notebook 7 alike). Markdown and raw cells have none: only code cells have outputs.
 */
import { Cell } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';
import { stopIcon } from '@jupyterlab/ui-components';

import { askIcon } from './icons';
import { isPromptCell, METADATA_KEY } from './cells';

export const CONTROL_CLASS = 'jp-cellmage-AskControl';
const PROMPT_CELL_CLASS = 'jp-cellmage-PromptCell';

export interface IControlActions {
  /** Whether the cell answers now (asked here or elsewhere). */
  running(cell: Cell): boolean;
  /** Ask, or stop the running answer. */
  toggle(panel: NotebookPanel, cell: Cell): void;
}

/** Give the notebook's code cells their control, now and as cells come. */
export function addControls(panel: NotebookPanel, actions: IControlActions): () => void {
  const notebook = panel.content;
  const seen = new WeakSet<Cell>();
  const decorate = () => {
    for (const cell of notebook.widgets) {
      if (cell.model.type === 'code' && !seen.has(cell)) {
        seen.add(cell);
        // A cell's DOM is made when it first shows (JupyterLab renders cells lazily)
        void cell.ready.then(() => attach(panel, cell, actions));
      }
    }
  };
  // Cell widgets are made in the notebook's own handler of the same change: look after it
  const changed = () => requestAnimationFrame(decorate);
  notebook.model?.cells.changed.connect(changed);
  notebook.modelChanged.connect(() => {
    notebook.model?.cells.changed.connect(changed);
    changed();
  });
  decorate();
  /** Refresh every control's state (a cell started or stopped answering). */
  return () => {
    for (const cell of notebook.widgets) {
      (cell.node.querySelector(`.${CONTROL_CLASS}`) as HTMLButtonElement & { refresh?: () => void })?.refresh?.();
    }
  };
}

function attach(panel: NotebookPanel, cell: Cell, actions: IControlActions): void {
  const wrapper = cell.node.querySelector('.jp-Cell-inputWrapper');
  if (wrapper === null || cell.isDisposed || wrapper.querySelector(`.${CONTROL_CLASS}`)) {
    return;
  }
  const button = document.createElement('button') as HTMLButtonElement & { refresh?: () => void };
  button.type = 'button';
  button.className = CONTROL_CLASS;
  const refresh = () => {
    const running = actions.running(cell);
    const label = running ? 'Stop the answer (Escape)' : 'Ask the LLM: this cell is the prompt (Ctrl+Alt+Enter)';
    button.title = label;
    button.setAttribute('aria-label', label);
    button.classList.toggle('jp-mod-running', running);
    button.replaceChildren((running ? stopIcon : askIcon).element({ tag: 'span', className: 'jp-cellmage-ButtonIcon' }));
    cell.node.classList.toggle(PROMPT_CELL_CLASS, isPromptCell(cell.model));
  };
  button.refresh = refresh;
  // Pressing it selects its cell (as a click on the cell does) but does not start a drag
  button.addEventListener('mousedown', event => event.stopPropagation());
  button.addEventListener('click', event => {
    event.stopPropagation();
    const index = panel.content.widgets.indexOf(cell);
    if (index !== -1 && panel.content.activeCellIndex !== index) {
      panel.content.activeCellIndex = index;
    }
    actions.toggle(panel, cell);
  });
  cell.model.metadataChanged.connect((_, change) => {
    if (change.key === METADATA_KEY) {
      refresh();
    }
  });
  wrapper.append(button);
  refresh();
}
