/**
 * Which cells are prompts, and which notebook cell an element of the page belongs to.
 *
 * A code cell is a prompt when its metadata says `"cellmage": {"prompt": true}`: the lab plugin
 * writes it when the cell is asked from its ✦ control (or the command, or the shortcut), so every
 * run command answers it as a prompt from then on (executor.ts), in notebook order, with or without
 * a kernel. A cell whose first line is `%%llm` is the magic's: a kernel runs it, and without a
 * kernel the plugin answers it as a prompt. The metadata comes from a notebook that may come from
 * anywhere: only the exact value `true` counts, and what it does is send that cell's own text to
 * this server's model (never to the kernel).
 */
import { Cell, ICellModel } from '@jupyterlab/cells';
import { INotebookModel, INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { MAGIC } from './flags';

/** The cell metadata key this plugin owns. */
export const METADATA_KEY = 'cellmage';

/** Whether the code cell is a prompt (asked from the ✦ control once). */
export function isPromptCell(model: ICellModel): boolean {
  // JSON boundary: cell metadata as stored in the notebook.
  const meta = model.getMetadata(METADATA_KEY) as any;
  return model.type === 'code' && meta !== null && typeof meta === 'object' && meta.prompt === true;
}

/** Record that the cell is a prompt (shared with collaborators, saved with the notebook). */
export function markPrompt(model: ICellModel): void {
  if (!isPromptCell(model)) {
    // JSON boundary: keep whatever else the key held
    const meta = model.getMetadata(METADATA_KEY) as any;
    const rest = meta !== null && typeof meta === 'object' && !Array.isArray(meta) ? meta : {};
    model.setMetadata(METADATA_KEY, { ...rest, prompt: true });
  }
}

/** The cell runs as code again. */
export function unmarkPrompt(model: ICellModel): void {
  // JSON boundary: cell metadata as stored.
  const meta = model.getMetadata(METADATA_KEY) as any;
  if (meta !== null && typeof meta === 'object' && 'prompt' in meta) {
    const { prompt: _, ...rest } = meta;
    if (Object.keys(rest).length) {
      model.setMetadata(METADATA_KEY, rest);
    } else {
      model.deleteMetadata(METADATA_KEY);
    }
  }
}

/** Whether the cell's first line is the magic's `%%llm` line. */
export function isMagicCell(model: ICellModel): boolean {
  const first = model.sharedModel.getSource().split('\n', 1)[0].trim();
  return model.type === 'code' && (first === MAGIC || first.startsWith(MAGIC + ' '));
}

export interface ICellContext {
  panel: NotebookPanel;
  cell: Cell;
}

let tracker: INotebookTracker | null = null;

/** The page's notebooks (set once by the plugin; the answer renderer finds its cell through it). */
export function setTracker(notebooks: INotebookTracker): void {
  tracker = notebooks;
}

/** The notebook cell whose DOM holds `node` (an answer's output), if any. */
export function cellOf(node: Element): ICellContext | null {
  const cellNode = node.closest('.jp-Cell');
  if (tracker === null || cellNode === null) {
    return null;
  }
  let found: ICellContext | null = null;
  tracker.forEach(panel => {
    if (found === null && panel.node.contains(cellNode)) {
      const cell = panel.content.widgets.find(c => c.node === cellNode);
      found = cell ? { panel, cell } : null;
    }
  });
  return found;
}

/** The panel showing a notebook model. */
export function panelOf(model: INotebookModel | null): NotebookPanel | null {
  return tracker?.find(panel => panel.content.model === model) ?? null;
}

/** What the plugin does for the answer renderer, which has no access to the application: set by
 * the plugin when it activates. `retry`: ask again as the output was asked (`toolbar`: an answer
 * or problem the lab plugin wrote; otherwise a kernel's, run again by the notebook). */
export const cellHooks: { retry: ((where: ICellContext, toolbar: boolean) => void) | null } = { retry: null };
