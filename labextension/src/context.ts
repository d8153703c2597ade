/**
 * The toolbar's context (README "Context"): what of the page's notebook goes with a prompt, from
 * the flags of its first line. `--cells N` sends the N code cells above the asking cell as this
 * page shows them (unsaved edits included: the page's own models), `--error` the error output of
 * the nearest cell above that has one, `--snippet`/`--sys-snippet` their names (the server finds
 * the files). `--var` needs the kernel, which the toolbar does not use: refused, saying what to do.
 *
 * Pure: nbformat JSON in (every value checked against its shape: a notebook may come from
 * anywhere), the wire's `context` out; the same text as cellmage_server/context/notebook.py. Also
 * the hint under an error output of CellMage's own load line (explain.ts shows it).
 */
import { ANSWER_MIME } from './answermime';
import { ICellFlags, MAGIC } from './flags';

/** The longest text one context item may carry on the wire (contract.py `_TEXT`). */
export const WIRE_TEXT = 200_000;

export interface IPageCell {
  source: string;
  outputs: string;
  label: string;
}

export interface IContextRequest {
  page_cells?: IPageCell[];
  error?: { text: string };
  snippets?: string[];
  sys_snippets?: string[];
}

/** A flag the toolbar cannot honour, said so a person knows what to do. */
export class ContextRefused extends Error {}

export const VAR_REFUSED =
  '--var needs a kernel variable, and the toolbar asks without the kernel. Ask with a %%llm cell that ' +
  'the kernel runs (after %load_ext cellmage_server), or leave out --var.';

export const NO_ERROR = 'No cell above this one has an error output: run the failing cell first, or leave out --error.';

// Terminal colour and cursor codes (IPython's tracebacks are full of them); notebook.py's _ANSI.
// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07/g;

const plain = (text: string): string => text.replace(ANSI, '');

const cut = (text: string): string => (text.length > WIRE_TEXT ? text.slice(0, WIRE_TEXT) : text);

// JSON boundary: values read from a notebook.
type Json = any;

const isObject = (value: Json): value is Record<string, Json> => value !== null && typeof value === 'object' && !Array.isArray(value);

/** A multiline string of nbformat: a string, or a list of strings (others left out). */
function text(value: Json): string {
  if (Array.isArray(value)) {
    return value.filter(v => typeof v === 'string').join('');
  }
  return typeof value === 'string' ? value : '';
}

function errorText(output: Record<string, Json>): string {
  const traceback = output.traceback;
  if (Array.isArray(traceback) && traceback.length) {
    return plain(traceback.filter(t => typeof t === 'string').join('\n'));
  }
  return `${text(output.ename)}: ${text(output.evalue)}`;
}

/** A cell's outputs as text, in order (anything of the wrong shape is left out). */
export function outputsText(outputs: Json): string {
  const parts: string[] = [];
  for (const output of Array.isArray(outputs) ? outputs : []) {
    if (!isObject(output)) {
      continue;
    }
    const kind = output.output_type;
    if (kind === 'stream') {
      parts.push(plain(text(output.text)));
    } else if (kind === 'error') {
      parts.push(errorText(output));
    } else if (kind === 'execute_result' || kind === 'display_data') {
      const data = isObject(output.data) ? output.data : {};
      if (ANSWER_MIME in data) {
        parts.push('[an LLM answer]');
      } else if (Object.keys(data).some(k => k.startsWith('image/'))) {
        parts.push('[image]'); // (its text/plain is a repr like "<Figure>": no help)
      } else if ('text/plain' in data) {
        parts.push(plain(text(data['text/plain'])));
      } else if (Object.keys(data).length) {
        parts.push('[rich output]');
      }
    }
  }
  return parts
    .filter(p => p.trim())
    .map(p => p.replace(/\n+$/, ''))
    .join('\n');
}

/** A prompt cell: a `%%llm` first line, or asked from the ✦ control (its turn is in the
 * conversation already, so it is not context). */
export function isPromptJSON(cell: Record<string, Json>): boolean {
  const meta = isObject(cell.metadata) ? cell.metadata.cellmage : null;
  return text(cell.source).trimStart().startsWith(MAGIC) || (isObject(meta) && meta.prompt === true);
}

function codeCellsAbove(cells: readonly Json[], index: number): Record<string, Json>[] {
  return cells.slice(0, Math.max(0, index)).filter(c => isObject(c) && c.cell_type === 'code' && !isPromptJSON(c));
}

function label(cell: Record<string, Json>, index: number): string {
  const count = cell.execution_count;
  return Number.isInteger(count) ? `In [${count}]` : `cell ${index + 1}`;
}

/** The error output of the nearest code cell above `index` that has one, as text; null if none. */
export function errorAbove(cells: readonly Json[], index: number): { text: string; cell: number } | null {
  for (let i = Math.min(index, cells.length) - 1; i >= 0; i--) {
    const cell = cells[i];
    if (!isObject(cell) || cell.cell_type !== 'code' || !Array.isArray(cell.outputs)) {
      continue;
    }
    const error = cell.outputs.find((o: Json) => isObject(o) && o.output_type === 'error');
    if (error) {
      return { text: errorText(error), cell: i };
    }
  }
  return null;
}

/**
 * The request's `context` for a prompt at `index` among the page's `cells` (nbformat JSON), or
 * undefined when its flags ask for none. Throws ContextRefused for what the toolbar cannot send.
 */
export function pageContext(flags: ICellFlags, cells: readonly Json[], index: number): IContextRequest | undefined {
  if (flags.vars?.length) {
    throw new ContextRefused(VAR_REFUSED);
  }
  const context: IContextRequest = {};
  if (flags.cells !== undefined) {
    const above = codeCellsAbove(cells, index).slice(-flags.cells);
    context.page_cells = above.map(c => ({
      source: cut(text(c.source)),
      outputs: cut(outputsText(c.outputs)),
      label: label(c, cells.indexOf(c))
    }));
  }
  if (flags.error) {
    const error = errorAbove(cells, index);
    if (error === null || !error.text.trim()) {
      throw new ContextRefused(NO_ERROR);
    }
    context.error = { text: cut(error.text) };
  }
  if (flags.snippets?.length) {
    context.snippets = [...flags.snippets];
  }
  if (flags.sys_snippets?.length) {
    context.sys_snippets = [...flags.sys_snippets];
  }
  return Object.keys(context).length ? context : undefined;
}

/** CellMage's tutorials load `cellmage.integrations.ipython_magic`, which belongs to the CellMage
 * package, not this one: under that ModuleNotFoundError, say what to write instead. */
export const CELLMAGE_HINT =
  'Using cellmage-server? Write %load_ext cellmage_server instead (README: Coming from CellMage); the name cellmage belongs to the CellMage package.';

export function cellmageHint(output: unknown): string | null {
  const o = output as Json; // an error output as stored
  const missing =
    o !== null && typeof o === 'object' && o.ename === 'ModuleNotFoundError' && typeof o.evalue === 'string'
      ? /^No module named '(cellmage)(\.[\w.]+)?'$/.exec(o.evalue)
      : null;
  return missing ? CELLMAGE_HINT : null;
}
