/** Wiring only: the plugin, its settings, its commands in the palette, the cell executor. */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { Asker, ICellmageSettings } from './ask';
import { cellHooks, isPromptCell, panelOf, setTracker } from './cells';
import { answering, askOrStop, CommandIDs, explainError, registerCommands } from './commands';
import { addControls } from './control';
import { executorPlugin, promptRunner } from './executor';
import { addExplainButtons, registerExplainActions } from './explain';
import { liveAnswers, liveSettings } from './live';
import { setImageOrigins } from './render';
import { IStatus, requestAPI } from './request';
import { settleAbandoned } from './settle';
import { answerTocPlugin } from './toc';

const PLUGIN_ID = 'cellmage-server:plugin';

const DEFAULTS: ICellmageSettings = { model: '', persona: '', temperature: null, stream: true, renderInterval: 50 };

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Ask an LLM from a notebook cell and stream the answer into its output.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ICommandPalette, ISettingRegistry],
  activate: async (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    palette: ICommandPalette | null,
    registry: ISettingRegistry | null
  ) => {
    let current: ICellmageSettings = { ...DEFAULTS };
    const asker = new Asker(() => current);
    setTracker(tracker);
    // Prompt cells answer as prompts whichever run command runs them (executor.ts)
    promptRunner.run = async options => {
      const panel = panelOf(options.notebook);
      return panel ? asker.ask(panel, options.cell) : false;
    };
    cellHooks.retry = (where, toolbar) => {
      if (toolbar || isPromptCell(where.cell.model)) {
        void asker.ask(where.panel, where.cell, { mark: true });
        return;
      }
      // A kernel's answer: run the cell again, as a run command does
      const notebook = where.panel.content;
      notebook.activeCellIndex = notebook.widgets.indexOf(where.cell);
      notebook.deselectAll();
      void NotebookActions.run(notebook, where.panel.sessionContext);
    };

    const loaded = registry ? await registry.load(PLUGIN_ID).catch(() => null) : null;
    const read = () => {
      if (loaded) {
        current = { ...DEFAULTS, ...(loaded.composite as Partial<ICellmageSettings>) };
      }
      liveSettings.renderInterval = current.renderInterval;
    };
    read();
    loaded?.changed.connect(read);

    // Which image origins the admin allowed: until the server says, images show as links.
    void requestAPI<IStatus>('status')
      .then(status => setImageOrigins(status.image_origins ?? []))
      .catch(() => undefined);

    registerExplainActions();
    registerCommands(app, tracker, asker, () => current, async model => {
      if (loaded) {
        await loaded.set('model', model);
      } else {
        current = { ...current, model };
      }
    });
    tracker.widgetAdded.connect((_, panel) => {
      // Every code cell's ✦ control, which is the stop control while the cell answers
      const refresh = addControls(panel, {
        running: cell => answering(asker, cell),
        toggle: (p, cell) => void askOrStop(asker, p, cell)
      });
      // Every error output's "Explain this error"
      addExplainButtons(panel, cell => void explainError(asker, panel, cell));
      asker.changed.connect(refresh);
      liveAnswers.cellsChanged.connect(refresh);
      panel.disposed.connect(() => {
        asker.changed.disconnect(refresh);
        liveAnswers.cellsChanged.disconnect(refresh);
      });
      // A notebook that opens with answers left live (their asker went away) gets how they ended.
      void panel.context.ready.then(() => settleAbandoned(panel)).catch(() => undefined);
    });

    const inPalette = [
      CommandIDs.run,
      CommandIDs.stop,
      CommandIDs.runAsCode,
      CommandIDs.explainError,
      CommandIDs.showConversation,
      CommandIDs.clearConversation,
      CommandIDs.chooseModel,
      CommandIDs.showStatus
    ];
    for (const command of inPalette) {
      palette?.addItem({ command, category: 'CellMage' });
    }
  }
};

export default [plugin, executorPlugin, answerTocPlugin];
