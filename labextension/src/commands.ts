/**
 * The commands: ask the LLM with the active code cell as prompt (the ✦ control, the cell-toolbar
 * button, Ctrl/Cmd+Alt+Enter), stop it, run a prompt cell as code again, pick the default model,
 * show the server's status and the notebook's conversation.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import { Cell } from '@jupyterlab/cells';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { stopIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { Asker, describeFailure, ICellmageSettings } from './ask';
import { isPromptCell, unmarkPrompt } from './cells';
import { hasError, insertExplainCell } from './explain';
import { escapeText } from './ending';
import { askIcon } from './icons';
import { liveAnswers } from './live';
import { ANSWER_MIME } from './mime';
import { allowedImageOrigins, renderAnswer } from './render';
import { IConversation, IStatus, requestAPI } from './request';
import { closeOpenFence, safeMarkdown } from './safemd';

export { askIcon, ICellmageSettings };

export namespace CommandIDs {
  export const run = 'cellmage:run-cell';
  export const stop = 'cellmage:stop';
  export const showConversation = 'cellmage:show-conversation';
  export const clearConversation = 'cellmage:clear-conversation';
  export const chooseModel = 'cellmage:choose-model';
  export const showStatus = 'cellmage:show-status';
  export const runAsCode = 'cellmage:run-as-code';
  export const explainError = 'cellmage:explain-error';
}

function textBody(text: string): Widget {
  const node = document.createElement('div');
  node.className = 'jp-cellmage-StatusBody';
  node.textContent = text;
  return new Widget({ node });
}

/** Longest answer shown whole in the conversation dialog; longer ones are cut, saying so. */
const DIALOG_ANSWER_CHARS = 4000;

/** A conversation as safe Markdown: each turn a heading, its prompt quoted as text, its answer. */
export function conversationMarkdown(conversation: IConversation, origins: readonly string[]): string {
  if (!conversation.turns.length) {
    return "This notebook's conversation is empty.";
  }
  const turns = conversation.turns.map((t, i) => {
    const status = t.status === 'ok' ? '' : ` (${t.status})`;
    const prompt = t.prompt.trim().split('\n').map(line => '> ' + escapeText(line)).join('\n');
    const cut = t.answer.length > DIALOG_ANSWER_CHARS;
    const answer = closeOpenFence(safeMarkdown(cut ? t.answer.slice(0, DIALOG_ANSWER_CHARS) : t.answer, origins));
    const more = cut ? `\n\n*${t.answer.length - DIALOG_ANSWER_CHARS} more characters in the cell's output.*` : '';
    return `#### ${i + 1}. ${escapeText(t.model ?? 'unknown model')}${status}\n\n${prompt}\n\n${answer}${more}`;
  });
  const totals = conversation.totals;
  return turns.join('\n\n---\n\n') + `\n\n---\n\n*${totals.turns} turn(s), ${totals.prompt_tokens} + ${totals.completion_tokens} tokens*`;
}

/** Whether the cell answers now: asked from this page, or from another page or a kernel. */
export function answering(asker: Asker, cell: Cell): boolean {
  return asker.isAsking(cell.model.id) || liveAnswers.runningIn(cell.model.id) !== null;
}

/** Ask with the cell as prompt (recording it as one), or stop its running answer. */
export async function askOrStop(asker: Asker, panel: NotebookPanel, cell: Cell): Promise<void> {
  if (cell.model.type !== 'code') {
    return;
  }
  if (asker.stop(cell.model.id)) {
    return; // a second press stops rather than starting another answer
  }
  const elsewhere = liveAnswers.runningIn(cell.model.id);
  if (elsewhere) {
    await elsewhere.stop(); // answering from another page or a kernel: the control stops that answer
    return;
  }
  await asker.ask(panel, cell, { mark: true });
}

/** Insert a prompt cell below the failing `cell` that asks to explain its error, and ask it. */
export async function explainError(asker: Asker, panel: NotebookPanel, cell: Cell): Promise<void> {
  const prompt = insertExplainCell(panel, cell);
  if (prompt !== null) {
    await asker.ask(panel, prompt);
  }
}

export function registerCommands(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  asker: Asker,
  settings: () => ICellmageSettings,
  setModel: (model: string) => Promise<void>
): void {
  const changed = () => {
    app.commands.notifyCommandChanged(CommandIDs.run);
    app.commands.notifyCommandChanged(CommandIDs.stop);
    app.commands.notifyCommandChanged(CommandIDs.runAsCode);
  };
  asker.changed.connect(changed);
  liveAnswers.cellsChanged.connect(changed);
  const activeCodeCell = (): Cell | null => {
    const cell = tracker.activeCell;
    return cell && cell.model.type === 'code' ? cell : null;
  };
  const activeRunning = (): boolean => {
    const cell = activeCodeCell();
    return cell !== null && answering(asker, cell);
  };

  app.commands.addCommand(CommandIDs.run, {
    label: () => (activeRunning() ? 'Stop the Answer' : 'Ask the LLM'),
    caption: () =>
      activeRunning()
        ? 'Stop the answer streaming into this cell (Escape)'
        : 'Send this cell to the LLM and stream the answer into its output',
    icon: () => (activeRunning() ? stopIcon : askIcon),
    isVisible: () => activeCodeCell() !== null,
    isEnabled: () => activeCodeCell() !== null,
    execute: async () => {
      const cell = activeCodeCell();
      const panel = tracker.currentWidget;
      if (cell && panel) {
        await askOrStop(asker, panel, cell);
      }
    }
  });

  app.commands.addCommand(CommandIDs.stop, {
    label: 'Stop the LLM Answers',
    caption: 'Stop every answer streaming into a cell',
    isEnabled: () => asker.size > 0,
    execute: () => asker.stopAll()
  });

  app.commands.addCommand(CommandIDs.runAsCode, {
    label: 'CellMage: Run This Cell as Code',
    caption: 'This cell is a prompt (asked from its ✦ control): from now on, run it with the kernel again',
    isEnabled: () => {
      const cell = activeCodeCell();
      return cell !== null && isPromptCell(cell.model);
    },
    execute: () => {
      const cell = activeCodeCell();
      if (cell) {
        unmarkPrompt(cell.model);
      }
    }
  });

  app.commands.addCommand(CommandIDs.explainError, {
    label: 'CellMage: Explain This Error',
    caption: "Ask the LLM, in a new cell below, to explain this cell's error and fix its code",
    isEnabled: () => {
      const cell = activeCodeCell();
      return cell !== null && hasError(cell);
    },
    execute: async () => {
      const cell = activeCodeCell();
      const panel = tracker.currentWidget;
      if (cell && panel && hasError(cell)) {
        await explainError(asker, panel, cell);
      }
    }
  });

  const conversationPath = (): string | null => {
    const panel = tracker.currentWidget;
    return panel ? `conversations/${encodeURIComponent(panel.context.path)}` : null;
  };

  app.commands.addCommand(CommandIDs.showConversation, {
    label: 'CellMage: Show Conversation',
    caption: "Show this notebook's conversation: every cell's prompt and answer, in order",
    isEnabled: () => tracker.currentWidget !== null,
    execute: async () => {
      const path = conversationPath();
      if (!path) {
        return;
      }
      let body: Widget;
      try {
        const answer = await requestAPI<IConversation>(path);
        const rendermime = tracker.currentWidget!.content.rendermime;
        body = new Widget();
        body.addClass('jp-RenderedHTMLCommon');
        body.addClass('jp-cellmage-Conversation');
        // Answers are untrusted: rendered as every answer is (safe Markdown, sanitized, inert).
        await renderAnswer(body.node, conversationMarkdown(answer, allowedImageOrigins()), {
          mimeType: ANSWER_MIME,
          sanitizer: rendermime.sanitizer,
          resolver: null,
          linkHandler: null,
          latexTypesetter: rendermime.latexTypesetter,
          markdownParser: rendermime.markdownParser
        });
      } catch (error) {
        body = textBody(describeFailure(error));
      }
      await showDialog({ title: 'CellMage conversation', body, buttons: [Dialog.okButton()] });
    }
  });

  app.commands.addCommand(CommandIDs.clearConversation, {
    label: 'CellMage: Clear Conversation',
    caption: "Forget this notebook's conversation: the next answers start afresh",
    isEnabled: () => tracker.currentWidget !== null,
    execute: async () => {
      const path = conversationPath();
      if (!path) {
        return;
      }
      const confirm = await showDialog({
        title: 'Clear the conversation?',
        body: textBody("The server forgets this notebook's earlier prompts and answers. The outputs stay."),
        buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Clear' })]
      });
      if (!confirm.button.accept) {
        return;
      }
      try {
        await requestAPI(path, { method: 'DELETE' });
      } catch (error) {
        await showDialog({ title: 'CellMage', body: textBody(describeFailure(error)), buttons: [Dialog.okButton()] });
      }
    }
  });

  app.commands.addCommand(CommandIDs.chooseModel, {
    label: 'CellMage: Choose Model',
    caption: 'Pick the model the cell-toolbar action uses by default',
    execute: async () => {
      let answer: { default: string; models: { name: string; description: string }[] };
      try {
        answer = await requestAPI('models');
      } catch (error) {
        await showDialog({ title: 'CellMage', body: textBody(describeFailure(error)), buttons: [Dialog.okButton()] });
        return;
      }
      const names = answer.models.map(m => m.name);
      const current = settings().model || answer.default;
      const picked = await InputDialog.getItem({
        title: 'Default model for CellMage',
        items: names,
        current: Math.max(0, names.indexOf(current))
      });
      if (picked.button.accept && picked.value) {
        await setModel(picked.value);
      }
    }
  });

  app.commands.addCommand(CommandIDs.showStatus, {
    label: 'CellMage: Server Status',
    caption: 'Show whether an LLM provider is configured on this server',
    execute: async () => {
      let lines: string[];
      try {
        const status = await requestAPI<IStatus>('status');
        lines = [`cellmage-server ${status.version}`, status.message];
        if (status.configured) {
          lines.push(`Default model: ${status.default_model ?? '(none)'}`);
        }
      } catch (error) {
        lines = [describeFailure(error)];
      }
      await showDialog({ title: 'CellMage', body: textBody(lines.join('\n')), buttons: [Dialog.okButton()] });
    }
  });
}
