/** Wiring only: the plugin, its settings, its commands in the palette. */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { CommandIDs, ICellmageSettings, registerCommands } from './commands';
import { liveSettings } from './live';
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

    registerCommands(
      app,
      tracker,
      () => current,
      async model => {
        if (loaded) {
          await loaded.set('model', model);
        } else {
          current = { ...current, model };
        }
      }
    );
    // A notebook that opens with answers left live (their asker went away) gets how they ended.
    tracker.widgetAdded.connect((_, panel) => {
      void panel.context.ready.then(() => settleAbandoned(panel)).catch(() => undefined);
    });

    const inPalette = [
      CommandIDs.run,
      CommandIDs.stop,
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

export default [plugin, answerTocPlugin];
