/**
 * The shapes of ids that come from notebooks, checked before they reach a URL, a request or the
 * DOM. A notebook may come from anywhere: an answer id in an output, a cell's id, are untrusted
 * input like a model's answer. An answer id is 32 lowercase hex characters (what the server
 * mints), a cell id what nbformat 4.5 allows (1 to 64 of `A-Z a-z 0-9 - _`). A value of another
 * shape is ignored, with one line on the console. The same as cellmage_server/safety/shapes.py; both are
 * tested against tests/shape_cases.json. Pure: no JupyterLab imports.
 */

const ANSWER_ID = /^[0-9a-f]{32}$/;
const CELL_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** `value` if it is an answer id, else null. */
export function answerId(value: unknown): string | null {
  return typeof value === 'string' && ANSWER_ID.test(value) ? value : null;
}

/** `value` if it is an nbformat cell id, else null. */
export function cellId(value: unknown): string | null {
  return typeof value === 'string' && CELL_ID.test(value) ? value : null;
}

/** The API path of an answer (`answers/<id>`, `…/events`, `…/settle`) or of its cancel. Throws
 * on an id of another shape: no caller may build a URL from one. */
export function answerPath(id: string, what: '' | 'events' | 'settle' | 'cancel' = ''): string {
  if (answerId(id) === null) {
    throw new TypeError('CellMage: refused to build a URL from a value that is not an answer id');
  }
  return what === 'cancel' ? `chat/${id}/cancel` : what ? `answers/${id}/${what}` : `answers/${id}`;
}

/** A path under the API root, refused (thrown) if it could leave it: a `.` or `..` segment (also
 * spelled with `%2e`, which URL parsers read as a dot), a backslash, a query or fragment, a scheme
 * or a leading slash. The second line of defence: ids are checked where they are read. */
export function apiPath(path: string): string {
  const leaves =
    /[\\?#]/.test(path) ||
    /^([a-z][a-z0-9+.-]*:|\/)/i.test(path) ||
    path.split('/').some(segment => /^\.{1,2}$/.test(segment.replace(/%2e/gi, '.')));
  if (leaves) {
    throw new TypeError('CellMage: refused a request path that could leave the API root');
  }
  return path;
}

const warned = new Set<string>();

/** One console line for a value of the wrong shape found in a notebook (once per value). */
export function warnShape(what: string, value: unknown): void {
  let shown: string;
  try {
    shown = JSON.stringify(value) ?? String(value);
  } catch {
    shown = typeof value;
  }
  shown = shown.length > 60 ? shown.slice(0, 60) + '…' : shown;
  if (warned.size < 100 && !warned.has(what + shown)) {
    warned.add(what + shown);
    console.warn(`CellMage: ignored ${what} from the notebook that is not of the expected shape: ${shown}`);
  }
}
