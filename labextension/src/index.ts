import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, showDialog, Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { IStatus, requestAPI } from './request';

/** Command ids, one place. */
export namespace CommandIDs {
  export const showStatus = 'cellmage:show-status';
}

function describe(status: IStatus): string {
  const lines = [`cellmage-server ${status.version}`, status.message];
  if (status.configured) {
    lines.push(`Default model: ${status.default_model ?? '(none)'}`);
  }
  return lines.join('\n');
}

/** Dialog body that keeps the text's line breaks (and never parses it as HTML). */
function textBody(text: string): Widget {
  const node = document.createElement('div');
  node.className = 'jp-cellmage-StatusBody';
  node.textContent = text;
  return new Widget({ node });
}

/** The plugin: registers the status command (the cell-toolbar action comes next). */
const plugin: JupyterFrontEndPlugin<void> = {
  id: 'cellmage-server:plugin',
  description: 'Stream LLM answers into notebooks through the Jupyter server.',
  autoStart: true,
  optional: [ICommandPalette],
  activate: (app: JupyterFrontEnd, palette: ICommandPalette | null) => {
    app.commands.addCommand(CommandIDs.showStatus, {
      label: 'CellMage: Server Status',
      caption: 'Show whether an LLM provider is configured on this server',
      execute: async () => {
        let body: string;
        try {
          body = describe(await requestAPI<IStatus>('status'));
        } catch (error) {
          body = `CellMage is unavailable: ${(error as Error).message}`;
        }
        await showDialog({
          title: 'CellMage',
          body: textBody(body),
          buttons: [Dialog.okButton()]
        });
      }
    });
    palette?.addItem({ command: CommandIDs.showStatus, category: 'CellMage' });
  }
};

export default plugin;
