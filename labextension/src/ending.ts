/**
 * How an answer ends, said as the kernel magic says it (cellmage_server/answer/ending.py; both are tested
 * against tests/ending_cases.json): a Stopped marker, the error with what to do, the status line,
 * appended after the answer outside any code block it left open.
 */
import { answerHtml } from './answerhtml';
import { ANSWER_MIME } from './answermime';
import { breakTex, closeOpenFence, safeMarkdown } from './safemd';

/** What to do about each error code (and "disconnected": the stream ended without `done`). */
export const HINTS: Record<string, string> = {
  auth: "Ask whoever runs this Jupyter server to check the model's key in cellmage.toml.",
  rate_limited: 'Wait a moment, then run the cell again.',
  context_length: 'Use --no-history, clear the conversation, or choose a model with a longer context.',
  timeout: 'Run the cell again, or ask for a shorter answer.',
  content_filter: 'Rephrase the prompt.',
  upstream: 'Run the cell again; if it keeps failing, ask whoever runs this Jupyter server.',
  internal: "Run the cell again; the Jupyter server's log says more.",
  shutdown: 'Run the cell again once the Jupyter server is back.',
  slow_client: 'Run the cell again.',
  too_long: 'Ask for a shorter answer.',
  disconnected: 'Check that the Jupyter server is running, then run the cell again.',
  abandoned: 'Run the cell again for a whole answer.',
  cell_busy: 'Stop the running answer first, or wait for it to end.'
};

/** What happened, for a code whose message is empty. */
export const WHAT: Record<string, string> = {
  auth: "The provider refused this server's key.",
  rate_limited: 'The provider is limiting how often this server may ask.',
  context_length: 'The prompt and the conversation before it are too long for this model.',
  timeout: 'The provider took too long to answer.',
  content_filter: "The provider's content filter refused the prompt or the answer.",
  upstream: 'The provider failed.',
  internal: 'The Jupyter server failed while relaying the answer.',
  shutdown: 'The Jupyter server stopped during the answer.',
  slow_client: 'The answer was read too slowly, so the server stopped it.',
  too_long: "The answer grew past this server's size limit.",
  disconnected: 'The connection to the Jupyter server closed before the answer finished.',
  abandoned: 'The page or kernel that asked closed before the answer ended.',
  cell_busy: 'This cell is already answering.'
};

/** Transport words in a server message, and what they mean for the user. */
const BROKE = /connection broke|peer closed connection|incomplete chunked read|server disconnected|connection reset|stream ended before the answer was finished/i;
const UNREACHABLE = /cannot connect to the provider|connection refused|name or service not known|nodename nor servname/i;

export const STOPPED = '*Stopped before the end of the answer.*';

export interface IEnding {
  model?: string | null;
  prompt_tokens?: number | null;
  completion_tokens?: number | null;
  cost_usd?: number | null;
  elapsed_s?: number | null;
  error_code?: string | null;
  error_message?: string | null;
  stopped?: boolean;
  /** What context went (contextSummary). */
  context?: string | null;
}

const given = (v: number | null | undefined): v is number => v !== null && v !== undefined;

/** One item of `start`'s `context` (what of the notebook went with the prompt). */
export interface IContextItem {
  kind: string;
  name?: string;
  n?: number;
  chars?: number;
}

const size = (chars: number): string => (chars < 1000 ? `${chars} B` : `${(chars / 1000).toFixed(1)} KB`);

/** What context went, in a few words: "3 cells, df (1.2 KB), error" (context_summary in ending.py). */
export function contextSummary(report: readonly IContextItem[] | null | undefined): string {
  const words: string[] = [];
  for (const item of report ?? []) {
    if (item.kind === 'cells') {
      const n = item.n ?? 0;
      words.push(`${n} cell${n !== 1 ? 's' : ''}`);
    } else if (item.kind === 'error') {
      words.push('error');
    } else if (item.name) {
      words.push(`${item.name} (${size(item.chars ?? 0)})`);
    }
  }
  return words.join(', ');
}

/** model · context when some went · tokens in → out · cost when known · time. */
export function statusLine(e: IEnding): string {
  const parts = [e.model || 'unknown model'];
  if (e.context) {
    parts.push(e.context);
  }
  if (given(e.prompt_tokens) || given(e.completion_tokens)) {
    parts.push(`${given(e.prompt_tokens) ? e.prompt_tokens : '?'} → ${given(e.completion_tokens) ? e.completion_tokens : '?'} tokens`);
  }
  if (given(e.cost_usd)) {
    parts.push(e.cost_usd >= 0.0001 ? `$${e.cost_usd.toFixed(4)}` : '< $0.0001');
  }
  if (given(e.elapsed_s)) {
    parts.push(`${e.elapsed_s.toFixed(1)} s`);
  }
  return parts.join(' · ');
}

/** Whether the ending is an error (a stop is not). */
export function failed(e: IEnding): boolean {
  return Boolean(e.error_code) && e.error_code !== 'cancelled';
}

/** The error in plain words: what happened (transport jargon said as what it means, no HTTP
 * status), and what to do. `partial`: some of the answer had arrived. */
export function describeError(e: IEnding, partial: boolean): { what: string; todo: string } {
  const code = e.error_code || 'internal';
  const message = (e.error_message ?? '').split(/\s+/).filter(Boolean).join(' ');
  let what: string;
  if (BROKE.test(message)) {
    what = partial ? "The provider's connection broke mid-answer." : "The provider's connection broke before it answered.";
  } else if (UNREACHABLE.test(message)) {
    what = 'This Jupyter server cannot reach the provider.';
  } else if (message) {
    what = message.replace(/\s*\(HTTP \d{3}\)/g, '');
  } else {
    what = WHAT[code] ?? `The answer failed (${code}).`;
  }
  return { what, todo: HINTS[code] ?? HINTS.upstream };
}

/** The error as one line of plain text: what happened, what to do. */
export function errorLine(e: IEnding, partial = false): string {
  const { what, todo } = describeError(e, partial);
  return `${what} ${todo}`;
}

/** Plain text inside Markdown: every ASCII punctuation character escaped, TeX commands broken. */
export function escapeText(text: string): string {
  // ASCII punctuation but brackets and parentheses: escaped, "\\(" and "\\[" would open math.
  const escaped = breakTex(text.split(/\s+/).filter(Boolean).join(' ')).replace(/([!-'*-/:-@\\^-`{-~])/g, '\\$1');
  // A backslash shows as one, then a zero-width space: "\\(" in the text must not open math either.
  return escaped.replace(/\\\\/g, '\\\\\u200b').replace(/\[/g, '&#91;').replace(/\]/g, '&#93;');
}

/** What follows the answer, in paragraphs of their own: the Stopped marker; then the error,
 * said once (what happened, in bold, and what to do), or else the status line. */
export function endingMarkdown(e: IEnding, partial = false): string {
  const lines: string[] = [];
  if (e.stopped) {
    lines.push(STOPPED);
  }
  if (failed(e)) {
    const { what, todo } = describeError(e, partial);
    lines.push(`**${escapeText(what)}** ${escapeText(todo)}`);
  } else {
    lines.push(`*${escapeText(statusLine(e))}*`);
  }
  return lines.join('\n\n');
}

/** The answer as it is stored: safe Markdown, any fence it left open closed, then its ending. */
export function finalMarkdown(text: string, e: IEnding, imageOrigins: readonly string[] = []): string {
  const body = closeOpenFence(safeMarkdown(text, imageOrigins)).replace(/\n+$/, '');
  return (body.trim() ? body + '\n\n' : '') + endingMarkdown(e, text.trim() !== '');
}

/** The ANSWER_MIME data: the safe Markdown, and which answer it is (live: still streaming;
 * quiet: shown only once complete). `failed`: the answer ended in an error (the renderer offers
 * Retry); `problem`: not an answer, a request refused before it started (the same); `stopped`:
 * someone stopped it. Each says how the answer ended: a kernel's line after it is not shown. */
export interface IAnswerMark {
  markdown: string;
  answer?: { id: string; live?: boolean; quiet?: boolean };
  failed?: boolean;
  problem?: boolean;
  stopped?: boolean;
}

/** An answer output's data: text/html for every renderer, safe Markdown for this extension's. */
export interface IAnswerBundle {
  'text/html': string;
  [ANSWER_MIME]: IAnswerMark;
  'text/plain'?: string;
}

function mark(text: string, e: IEnding, imageOrigins: readonly string[], answerId?: string): IAnswerMark {
  const result: IAnswerMark = { markdown: finalMarkdown(text, e, imageOrigins) };
  if (answerId !== undefined) {
    result.answer = { id: answerId };
  }
  if (failed(e)) {
    result.failed = true;
  }
  if (e.stopped) {
    result.stopped = true;
  }
  return result;
}

function storedHtml(text: string, e: IEnding, imageOrigins: readonly string[]): string {
  const closed = closeOpenFence(text).replace(/\n+$/, '');
  return answerHtml((closed.trim() ? closed + '\n\n' : '') + endingMarkdown(e, text.trim() !== ''), imageOrigins);
}

/** The stored answer once it ended (the same as answer_bundle in ending.py). */
export function answerBundle(
  text: string,
  e: IEnding,
  imageOrigins: readonly string[] = [],
  answerId?: string
): IAnswerBundle {
  return { 'text/html': storedHtml(text, e, imageOrigins), [ANSWER_MIME]: mark(text, e, imageOrigins, answerId) };
}

/** A new task: the browser may paint and handle input before the next step. */
const nextTask = (): Promise<void> => new Promise(resolve => setTimeout(resolve, 0));

/** answerBundle in steps, each its own task: a long answer's two forms are built without one
 * long task at the end of the answer. */
export async function answerBundleInSteps(
  text: string,
  e: IEnding,
  imageOrigins: readonly string[] = [],
  answerId?: string
): Promise<IAnswerBundle> {
  await nextTask();
  const html = storedHtml(text, e, imageOrigins);
  await nextTask();
  return { 'text/html': html, [ANSWER_MIME]: mark(text, e, imageOrigins, answerId) };
}

const FENCE = /^```(toml)?$/;

/** A problem (a request refused before the answer started; the server's or the plugin's own
 * message) as Markdown: its text escaped, line breaks kept, and a ```toml block the server offers
 * to paste (a config example) as a code block (problem_markdown in ending.py). */
export function problemMarkdown(message: string): string {
  const out: string[] = [];
  let code: string[] | null = null; // the lines of an open ```toml block, its fence line first
  let paragraph: string[] = [];
  const endParagraph = () => {
    if (paragraph.length) {
      out.push(paragraph.join('\\\n'));
      paragraph = [];
    }
  };
  for (const line of message.replace(/\r\n?/g, '\n').split('\n')) {
    if (code !== null) {
      if (line === '```') {
        out.push('```toml\n' + code.slice(1).join('\n') + '\n```');
        code = null;
      } else {
        code.push(line.replace(/`/g, "'"));
      }
    } else if (FENCE.test(line)) {
      endParagraph();
      code = [line];
    } else if (!line.trim()) {
      endParagraph();
    } else {
      paragraph.push(escapeText(line));
    }
  }
  endParagraph();
  if (code !== null) {
    out.push(code.map(escapeText).join('\\\n')); // never closed: as text
  }
  return out.join('\n\n');
}

/** A problem's output data: text/html, the mark, and the message as plain text for the rest. */
export function problemBundle(message: string): IAnswerBundle {
  const markdown = problemMarkdown(message);
  return { 'text/html': answerHtml(markdown), [ANSWER_MIME]: { markdown, problem: true }, 'text/plain': message };
}

/** What a live answer's placeholder shows where this extension is not there to follow it. */
export const LIVE_HTML = '<p><em>This answer was still streaming when this output was written.</em></p>';

/** A live answer's placeholder: this extension follows it by id (live_mark in ending.py is its
 * mark). `quiet`: show the answer only once it is complete (the `stream` setting off). */
export function liveMarker(answerId: string, quiet = false): IAnswerBundle {
  const answer: IAnswerMark['answer'] = { id: answerId, live: true };
  if (quiet) {
    answer.quiet = true;
  }
  return { 'text/html': LIVE_HTML, [ANSWER_MIME]: { markdown: '', answer } };
}

/** The last events of a stream: usage, error, done (their data as the server sent it). */
export interface IStreamEnd {
  // JSON boundary: the events' data.
  usage?: any;
  error?: { code: string; message: string } | null;
  done?: { finish_reason?: string; elapsed_ms?: number } | null;
}

/** An ending from a stream's last events (ending_from_events in ending.py). */
export function endingFromEvents(model: string | null | undefined, end: IStreamEnd): IEnding {
  const code = end.error?.code ?? null;
  const elapsed = end.done?.elapsed_ms;
  return {
    model,
    prompt_tokens: end.usage?.prompt_tokens ?? null,
    completion_tokens: end.usage?.completion_tokens ?? null,
    cost_usd: end.usage?.cost_usd ?? null,
    elapsed_s: elapsed === undefined || elapsed === null ? null : elapsed / 1000,
    error_code: code,
    error_message: end.error?.message ?? null,
    stopped: code === 'cancelled' || code === 'abandoned'
  };
}
