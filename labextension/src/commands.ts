/**
 * The commands: ask the LLM with the active code cell as prompt (the cell-toolbar button),
 * stop it, pick the default model, show the server's status.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, InputDialog, Notification, showDialog } from '@jupyterlab/apputils';
import { Cell, ICodeCellModel } from '@jupyterlab/cells';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { LabIcon, stopIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { answerBundleInSteps, endingFromEvents, errorLine, escapeText, IEnding, IStreamEnd, liveMarker } from './ending';
import { LiveAnswer, liveAnswers } from './live';
import { ANSWER_MIME } from './mime';
import { FlagError, splitCell } from './flags';
import { AnswerOutput, IAnswerMeta } from './output';
import { allowedImageOrigins, renderAnswer } from './render';
import { CellmageRequestError, IConversation, IStatus, requestAPI, streamAnswer } from './request';
import { closeOpenFence, safeMarkdown } from './safemd';
import { answerPath, cellId, warnShape } from './shapes';

export namespace CommandIDs {
  export const run = 'cellmage:run-cell';
  export const stop = 'cellmage:stop';
  export const showConversation = 'cellmage:show-conversation';
  export const clearConversation = 'cellmage:clear-conversation';
  export const chooseModel = 'cellmage:choose-model';
  export const showStatus = 'cellmage:show-status';
}

/** The plugin's settings (schema/plugin.json). */
export interface ICellmageSettings {
  model: string;
  persona: string;
  temperature: number | null;
  stream: boolean;
  renderInterval: number;
}

export const askIcon = new LabIcon({
  name: 'cellmage:ask',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16"><path class="jp-icon3" fill="#616161" ' +
    'd="M12 2l1.9 5.6L19.5 9.5l-5.6 1.9L12 17l-1.9-5.6L4.5 9.5l5.6-1.9zM19 14l.9 2.6 2.6.9-2.6.9L19 21l-.9-2.6-2.6-.9 2.6-.9z"/></svg>'
});

const STREAMING_CLASS = 'jp-cellmage-streaming';

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

function describeFailure(error: unknown): string {
  if (error instanceof CellmageRequestError) {
    const hint =
      error.status === 503
        ? ' Ask the server admin to configure a provider (cellmage.toml).'
        : error.status === 404
          ? ' Check the model and persona names (CellMage: Choose Model lists the models).'
          : '';
    return `CellMage: ${error.message} (HTTP ${error.status}).${hint}`;
  }
  if (error instanceof ServerConnection.NetworkError) {
    return 'CellMage: cannot reach the Jupyter server. Check that it is running, then try again.';
  }
  return `CellMage: the answer failed: ${(error as Error).message ?? error}`;
}

export function registerCommands(
  app: JupyterFrontEnd,
  tracker: INotebookTracker,
  settings: () => ICellmageSettings,
  setModel: (model: string) => Promise<void>
): void {
  const running = new Map<string, AbortController>();
  const changed = () => {
    app.commands.notifyCommandChanged(CommandIDs.run);
    app.commands.notifyCommandChanged(CommandIDs.stop);
  };
  const activeCodeCell = (): Cell | null => {
    const cell = tracker.activeCell;
    return cell && cell.model.type === 'code' ? cell : null;
  };

  async function ask(cell: Cell): Promise<void> {
    const model = cell.model as ICodeCellModel;
    const output = new AnswerOutput(model);
    const prefs = settings();
    let parsed;
    try {
      parsed = splitCell(model.sharedModel.getSource());
    } catch (error) {
      output.begin();
      output.problem(error instanceof FlagError ? `CellMage: ${error.message}` : String(error));
      return;
    }
    const { flags, prompt } = parsed;
    if (!prompt.trim()) {
      output.begin();
      output.problem('CellMage: the cell is empty: write the prompt (under a %%llm line, if you use one).');
      return;
    }
    const body: Record<string, unknown> = { prompt, stream: true };
    const panel = tracker.currentWidget;
    if (panel) {
      // The notebook is the conversation, the cell its turn (shared with the %%llm magic).
      body.conversation = panel.context.path;
      const id = cellId(model.id);
      if (id !== null) {
        body.cell_id = id;
      } else {
        warnShape('a cell id', model.id); // answered as a turn of no cell: a re-run adds one
      }
      body.history = flags.history ?? true;
      // CellMage's --no-history and --no-rollback (the grammar is the magic's: flags.ts)
      if (flags.remember === false) {
        body.remember = false;
      }
      if (flags.rollback === false) {
        body.rollback = false;
      }
    }
    if (flags.params) {
      body.params = flags.params; // checked by the server (its 400 says which may not be set)
    }
    const chosen = {
      model: flags.model ?? (prefs.model || undefined),
      persona: flags.persona ?? (prefs.persona || undefined),
      temperature: flags.temperature ?? prefs.temperature ?? undefined,
      max_tokens: flags.max_tokens
    };
    for (const [key, value] of Object.entries(chosen)) {
      if (value !== undefined) {
        body[key] = value;
      }
    }
    const live = flags.stream ?? prefs.stream;

    const controller = new AbortController();
    running.set(model.id, controller);
    // Already shown busy by the renderer of an answer asked elsewhere (then a refusal keeps it)
    const busyBefore = cell.node.getAttribute('aria-busy') === 'true';
    cell.node.classList.add(STREAMING_CLASS);
    cell.node.setAttribute('aria-busy', 'true');
    changed();

    let text = '';
    let answer: LiveAnswer | null = null;
    const meta: IAnswerMeta = {};
    const ending: IEnding = { model: chosen.model };
    const end: IStreamEnd = {};
    const started = performance.now();
    const origins = allowedImageOrigins();
    let failure: string | null = null;
    let busyElsewhere: string | null = null;
    try {
      await streamAnswer(
        body,
        ({ event, data }) => {
          if (event === 'delta') {
            text += data.text;
            answer?.append(data.text);
          } else if (event === 'start') {
            meta.model = ending.model = data.model;
            meta.persona = data.persona;
            // The cell gets the answer's placeholder once; this page's renderer and every other
            // page's follow the answer by its id until the stored answer replaces it.
            answer = liveAnswers.local(data.id, model.id, data.model, !live);
            output.begin();
            output.render(liveMarker(data.id), meta);
          } else if (event === 'usage') {
            meta.usage = end.usage = data;
          } else if (event === 'error') {
            meta.error = end.error = data;
            if (data.code === 'cancelled') {
              meta.stopped = true;
            }
          } else if (event === 'done') {
            end.done = data;
            meta.finish_reason = data.finish_reason;
            meta.elapsed_ms = data.elapsed_ms;
          }
        },
        controller.signal
      );
      if (!end.done && !end.error) {
        end.error = { code: 'disconnected', message: '' }; // the stream ended without its last event
      }
    } catch (error) {
      if (controller.signal.aborted) {
        meta.stopped = true;
        end.error = end.error ?? { code: 'cancelled', message: '' };
      } else if (error instanceof CellmageRequestError && error.status === 409) {
        busyElsewhere = error.message; // another page's or a kernel's answer: leave the cell alone
      } else if (answer !== null) {
        end.error = { code: 'disconnected', message: describeFailure(error) };
      } else {
        failure = describeFailure(error);
      }
    } finally {
      meta.elapsed_ms = meta.elapsed_ms ?? Math.round(performance.now() - started);
      end.done = end.done ?? { elapsed_ms: meta.elapsed_ms };
      Object.assign(ending, endingFromEvents(ending.model, end));
      const id = (answer as LiveAnswer | null)?.id;
      if (id !== undefined) {
        output.render(await answerBundleInSteps(text, ending, origins, id), meta);
        (answer as LiveAnswer | null)?.finish(end);
        liveAnswers.release(id);
      } else if (failure) {
        output.begin();
        output.problem(failure);
      }
      if (id !== undefined && ending.error_code && ending.error_code !== 'cancelled') {
        output.problem(`CellMage: ${errorLine(ending)}`);
      }
      running.delete(model.id);
      if (busyElsewhere === null || !busyBefore) {
        // (Refused while the cell's renderer shows another's running answer: that stays shown.)
        cell.node.classList.remove(STREAMING_CLASS);
        cell.node.removeAttribute('aria-busy');
      }
      if (panel && id !== undefined) {
        panel.context.model.dirty = true;
      }
      changed();
      if (busyElsewhere !== null) {
        Notification.warning(`CellMage: ${busyElsewhere}`, { autoClose: 8000 });
      }
    }
  }

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
      if (!cell) {
        return;
      }
      const current = running.get(cell.model.id);
      if (current) {
        current.abort(); // a second press stops rather than starting another answer
        return;
      }
      const elsewhere = liveAnswers.runningIn(cell.model.id);
      if (elsewhere) {
        // Answering from another page or a kernel: the stop control stops that answer.
        await requestAPI(answerPath(elsewhere.id, 'cancel'), { method: 'POST' }).catch(() => undefined);
        return;
      }
      await ask(cell);
    }
  });

  function activeRunning(): boolean {
    const cell = activeCodeCell();
    return cell !== null && (running.has(cell.model.id) || liveAnswers.runningIn(cell.model.id) !== null);
  }
  liveAnswers.cellsChanged.connect(changed);

  app.commands.addCommand(CommandIDs.stop, {
    label: 'Stop the LLM Answers',
    caption: 'Stop every answer streaming into a cell',
    isEnabled: () => running.size > 0,
    execute: () => {
      for (const controller of running.values()) {
        controller.abort();
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
