/**
 * Actions on an answer's code blocks (live, stored, and after reopening): Copy, Insert below as a
 * new code cell, and, in an answer of a prompt cell, Replace the cell above. The buttons are the
 * extension's own DOM, added after the answer was sanitized and hardened, and what they copy or
 * insert is the code block's text (as shown, exactly as written), never HTML.
 *
 * An action may act on a target cell: `replaceAction` builds one from a function that finds the
 * target (the cell above; an "Explain this error" prompt can name its failing cell the same way).
 * `registerCodeAction` adds one to the set every code block offers.
 */
import { Clipboard } from '@jupyterlab/apputils';
import { Cell } from '@jupyterlab/cells';
import { addBelowIcon, checkIcon, copyIcon, LabIcon, pasteIcon } from '@jupyterlab/ui-components';

import { cellOf, ICellContext, isMagicCell, isPromptCell, METADATA_KEY } from './cells';

/** A code block of an answer: its text and the language its fence named. */
export interface ICodeBlock {
  code: string;
  language: string | null;
}

export interface ICodeActionContext {
  block: ICodeBlock;
  /** The notebook cell whose output shows the answer; null outside a notebook (a dialog). */
  where: ICellContext | null;
}

export interface ICodeAction {
  id: string;
  label: string;
  icon: LabIcon;
  isAvailable(context: ICodeActionContext): boolean;
  execute(context: ICodeActionContext): void | Promise<void>;
}

export const ACTIONS_CLASS = 'jp-cellmage-CodeActions';

const copy: ICodeAction = {
  id: 'copy',
  label: 'Copy',
  icon: copyIcon,
  isAvailable: () => true,
  execute: ({ block }) => Clipboard.copyToSystem(block.code)
};

const insertBelow: ICodeAction = {
  id: 'insert-below',
  label: 'Insert below as a new code cell',
  icon: addBelowIcon,
  isAvailable: ({ where }) => where !== null && where.panel.content.model !== null,
  execute: ({ block, where }) => {
    const notebook = where!.panel.content;
    const index = notebook.widgets.indexOf(where!.cell);
    if (index === -1 || notebook.model === null) {
      return;
    }
    notebook.model.sharedModel.insertCell(index + 1, { cell_type: 'code', source: block.code, metadata: {} });
    notebook.activeCellIndex = index + 1;
    notebook.deselectAll();
    void notebook.scrollToItem(index + 1, 'auto');
  }
};

/** An action that replaces the code of the cell `target` finds (null: not offered). */
export function replaceAction(id: string, label: string, target: (context: ICodeActionContext) => Cell | null): ICodeAction {
  return {
    id,
    label,
    icon: pasteIcon,
    isAvailable: context => target(context) !== null,
    execute: context => {
      target(context)?.model.sharedModel.setSource(context.block.code);
    }
  };
}

/** The code cell above an answer of a prompt cell (asked from the ✦ control, or a `%%llm` cell),
 * when it is plain code (not a prompt itself). */
function cellAbove({ where }: ICodeActionContext): Cell | null {
  if (where === null || !(isPromptCell(where.cell.model) || isMagicCell(where.cell.model))) {
    return null;
  }
  // JSON boundary: an explaining prompt names its failing cell (explain.ts), which it replaces instead
  const meta = where.cell.model.getMetadata(METADATA_KEY) as any;
  if (meta !== null && typeof meta === 'object' && meta.target !== undefined) {
    return null;
  }
  const widgets = where.panel.content.widgets;
  const above = widgets[widgets.indexOf(where.cell) - 1];
  return above && above.model.type === 'code' && !isPromptCell(above.model) && !isMagicCell(above.model) ? above : null;
}

const actions: ICodeAction[] = [copy, insertBelow, replaceAction('replace-above', 'Replace the cell above', cellAbove)];

/** Offer `action` on every code block (after the action `after`, else at the end). */
export function registerCodeAction(action: ICodeAction, after?: string): void {
  const at = after === undefined ? -1 : actions.findIndex(a => a.id === after);
  actions.splice(at === -1 ? actions.length : at + 1, 0, action);
}

/** The code of a rendered code block: the text of its `code`, without the newline that ends it. */
function blockOf(pre: HTMLElement): ICodeBlock {
  const code = pre.querySelector('code');
  const text = (code ?? pre).textContent ?? '';
  const language = /(?:^|\s)language-([\w+#.-]+)/.exec(code?.className ?? '')?.[1] ?? null;
  return { code: text.replace(/\n$/, ''), language };
}

/** Give every code block among `nodes` (an answer's rendered blocks, in `answer`) its actions. */
export function addCodeActions(nodes: readonly Node[], answer: HTMLElement): void {
  for (const node of nodes) {
    if (node.nodeType !== 1) {
      continue;
    }
    const element = node as HTMLElement;
    const blocks = element.localName === 'pre' ? [element] : Array.from(element.querySelectorAll('pre'));
    for (const pre of blocks) {
      if (!pre.querySelector(`:scope > .${ACTIONS_CLASS}`)) {
        pre.prepend(toolbar(pre, answer));
        pre.classList.add('jp-cellmage-HasActions');
      }
    }
  }
}

function toolbar(pre: HTMLElement, answer: HTMLElement): HTMLElement {
  const bar = document.createElement('span');
  bar.className = ACTIONS_CLASS;
  bar.setAttribute('role', 'toolbar');
  bar.setAttribute('aria-label', 'Code block actions');
  const context = (): ICodeActionContext => ({ block: blockOf(pre), where: cellOf(answer) });
  const buttons = actions.map(action => {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'jp-cellmage-CodeAction jp-Button jp-mod-minimal';
    button.dataset.action = action.id;
    button.title = action.label;
    button.setAttribute('aria-label', action.label);
    button.append(action.icon.element({ tag: 'span', className: 'jp-cellmage-ButtonIcon' }));
    button.addEventListener('mousedown', event => event.stopPropagation()); // not a cell drag
    button.addEventListener('click', event => {
      event.stopPropagation();
      void Promise.resolve(action.execute(context())).then(() => done(button, action));
    });
    return { button, action };
  });
  // Which actions apply depends on where the answer is now (its cell, the cell above)
  const refresh = () => {
    const now = context();
    for (const { button, action } of buttons) {
      button.hidden = !action.isAvailable(now);
    }
  };
  pre.addEventListener('mouseenter', refresh);
  pre.addEventListener('focusin', refresh);
  refresh();
  bar.append(...buttons.map(b => b.button));
  return bar;
}

/** Say that an action was done (a check mark for a moment). */
function done(button: HTMLButtonElement, action: ICodeAction): void {
  button.replaceChildren(checkIcon.element({ tag: 'span', className: 'jp-cellmage-ButtonIcon' }));
  button.classList.add('jp-mod-done');
  setTimeout(() => {
    button.replaceChildren(action.icon.element({ tag: 'span', className: 'jp-cellmage-ButtonIcon' }));
    button.classList.remove('jp-mod-done');
  }, 1500);
}
