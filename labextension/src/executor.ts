/**
 * The notebook's cell executor (`INotebookCellExecutor`, which every run command calls: Run, Run
 * All, Restart & Run All, Shift+Enter, Run Above/Below): a prompt cell is answered as a prompt,
 * through the server, with or without a kernel; every other cell runs as it would without this
 * plugin. Cells run in notebook order: a prompt waits for the cells before it in the same run, the
 * cells after it wait for its answer, and a cell that fails (an error, a stopped or failed answer)
 * stops the cells queued behind it, as a kernel aborts its queue on an error.
 *
 * Which cells are prompts: cells.ts. jupyter-collaboration provides an executor of its own (its
 * docprovider extension's, which runs cells through the server when `serverSideExecution` is on)
 * and disables JupyterLab's; this package disables both (package.json, `disabledExtensions`) and
 * runs the others' cells through the one that would have run them: jupyter-collaboration's own
 * plugin when server-side execution is on, JupyterLab's `runCell` otherwise (which is all
 * jupyter-collaboration's executor does then).
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { PageConfig } from '@jupyterlab/coreutils';
import { INotebookCellExecutor, INotebookModel, runCell } from '@jupyterlab/notebook';

import { isMagicCell, isPromptCell } from './cells';

/** jupyter-collaboration's executor plugin (@jupyter/docprovider-extension). */
const COLLABORATION = { scope: '@jupyter/docprovider-extension', plugin: '@jupyter/docprovider-extension:notebook-cell-executor' };

const QUEUED_CLASS = 'jp-cellmage-queued';

/** How a prompt cell is answered: set by the plugin once it has the notebooks (which are built on
 * this executor, so it cannot wait for them). Resolves true when answered whole. */
export const promptRunner: { run: ((options: INotebookCellExecutor.IRunCellOptions) => Promise<boolean>) | null } = {
  run: null
};

/** Whether a run command answers the cell as a prompt. */
export function runsAsPrompt(options: INotebookCellExecutor.IRunCellOptions): boolean {
  const model = options.cell.model;
  if (model.type !== 'code') {
    return false;
  }
  // A %%llm cell is the kernel's magic, unless there is no kernel to run it
  return isPromptCell(model) || (isMagicCell(model) && !options.sessionContext?.session?.kernel);
}

interface IQueue {
  /** Settles when every cell scheduled so far has finished. */
  tail: Promise<void>;
  /** Cells this queue holds back (prompts, and cells behind one) that have not finished. */
  held: number;
  /** How many cells failed so far: a held cell scheduled before a failure does not run. */
  failures: number;
}

export class PromptCellExecutor implements INotebookCellExecutor {
  private readonly _queues = new WeakMap<INotebookModel, IQueue>();

  constructor(private readonly _base: () => Promise<INotebookCellExecutor>) {}

  runCell(options: INotebookCellExecutor.IRunCellOptions): Promise<boolean> {
    const queue = this._queueOf(options.notebook);
    const prompt = runsAsPrompt(options);
    if (!prompt && queue.held === 0) {
      // Nothing of this plugin ahead: the cell runs now, as without it (the kernel queues it)
      return this._track(queue, this._base().then(base => base.runCell(options)));
    }
    const failuresBefore = queue.failures;
    queue.held++;
    options.cell.node.classList.toggle(QUEUED_CLASS, prompt);
    const result = queue.tail.then(async () => {
      options.cell.node.classList.remove(QUEUED_CLASS);
      if (queue.failures !== failuresBefore) {
        return false; // a cell before it failed: it is not run, as a kernel aborts its queue
      }
      return prompt ? this._prompt(options) : (await this._base()).runCell(options);
    });
    void result.then(
      () => queue.held--,
      () => queue.held--
    );
    return this._track(queue, result);
  }

  private async _prompt(options: INotebookCellExecutor.IRunCellOptions): Promise<boolean> {
    if (promptRunner.run === null) {
      return false;
    }
    options.onCellExecutionScheduled({ cell: options.cell });
    const answered = await promptRunner.run(options);
    options.onCellExecuted({ cell: options.cell, success: answered });
    return answered;
  }

  private _queueOf(notebook: INotebookModel): IQueue {
    let queue = this._queues.get(notebook);
    if (!queue) {
      queue = { tail: Promise.resolve(), held: 0, failures: 0 };
      this._queues.set(notebook, queue);
    }
    return queue;
  }

  private _track(queue: IQueue, result: Promise<boolean>): Promise<boolean> {
    const settled = result.then(
      ran => {
        if (!ran) {
          queue.failures++;
        }
      },
      () => {
        queue.failures++;
      }
    );
    queue.tail = Promise.all([queue.tail, settled]).then(() => undefined);
    return result;
  }
}

/** The executor that runs the cells that are not prompts. */
async function baseExecutor(app: JupyterFrontEnd): Promise<INotebookCellExecutor> {
  if (PageConfig.getOption('serverSideExecution') === 'true') {
    try {
      // jupyter-collaboration's plugin, from the module JupyterLab loaded it from
      // JSON boundary: the page's federated extension containers
      const container = (window as any)._JUPYTERLAB?.[COLLABORATION.scope];
      const plugins = (await container.get('./extension'))().default as JupyterFrontEndPlugin<INotebookCellExecutor>[];
      const plugin = plugins.find(p => p.id === COLLABORATION.plugin);
      if (plugin) {
        return await plugin.activate(app);
      }
    } catch (error) {
      console.warn('CellMage: cannot load the collaboration cell executor; cells run through the kernel protocol', error);
    }
  }
  return Object.freeze({ runCell });
}

export const executorPlugin: JupyterFrontEndPlugin<INotebookCellExecutor> = {
  id: 'cellmage-server:cell-executor',
  description: 'Runs prompt cells as prompts (answered through the server) and every other cell as before.',
  autoStart: true,
  provides: INotebookCellExecutor,
  activate: (app: JupyterFrontEnd): INotebookCellExecutor => {
    let base: Promise<INotebookCellExecutor> | null = null;
    return new PromptCellExecutor(() => (base = base ?? baseExecutor(app)));
  }
};
