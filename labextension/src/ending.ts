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
  auth: "The provider refused this server's key: ask the admin to check the model's key in cellmage.toml.",
  rate_limited: 'Rate limited by the provider: retry in a moment.',
  context_length: 'The prompt and its history are too long: use --no-history or a model with a longer context.',
  timeout: 'The provider took too long: try again, or ask for a shorter answer.',
  content_filter: "The provider's content filter refused it: rephrase the prompt.",
  upstream: 'The provider failed: try again; if it keeps failing, ask the admin.',
  internal: 'The server failed while relaying the answer: try again; its log says more.',
  shutdown: 'The Jupyter server stopped: run the cell again when it is back.',
  slow_client: 'The answer was read too slowly and the server stopped it: run the cell again.',
  disconnected: 'The connection closed before the answer finished: run the cell again.',
  abandoned: 'Run the cell again for a whole answer.',
  cell_busy: 'Stop the running answer first, or wait for it to end.'
};

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

/** The error as one line of plain text: its code, the server's message, what to do. */
export function errorLine(e: IEnding): string {
  const code = e.error_code || 'internal';
  const words = [`Error (${code}):`];
  if (e.error_message) {
    words.push(e.error_message.trim());
  }
  if (HINTS[code]) {
    words.push(HINTS[code]);
  }
  return words.join(' ');
}

/** Plain text inside Markdown: every ASCII punctuation character escaped, TeX commands broken. */
export function escapeText(text: string): string {
  // ASCII punctuation but brackets and parentheses: escaped, "\\(" and "\\[" would open math.
  const escaped = breakTex(text.split(/\s+/).filter(Boolean).join(' ')).replace(/([!-'*-/:-@\\^-`{-~])/g, '\\$1');
  // A backslash shows as one, then a zero-width space: "\\(" in the text must not open math either.
  return escaped.replace(/\\\\/g, '\\\\\u200b').replace(/\[/g, '&#91;').replace(/\]/g, '&#93;');
}

/** What follows the answer: the marker, the error, the status line; paragraphs of their own. */
export function endingMarkdown(e: IEnding): string {
  const lines: string[] = [];
  if (e.stopped) {
    lines.push(STOPPED);
  }
  if (e.error_code && e.error_code !== 'cancelled') {
    lines.push(`**${escapeText(errorLine(e))}**`);
  }
  lines.push(`*${escapeText(statusLine(e))}*`);
  return lines.join('\n\n');
}

/** The answer as it is stored: safe Markdown, any fence it left open closed, then its ending. */
export function finalMarkdown(text: string, e: IEnding, imageOrigins: readonly string[] = []): string {
  const body = closeOpenFence(safeMarkdown(text, imageOrigins)).replace(/\n+$/, '');
  return (body.trim() ? body + '\n\n' : '') + endingMarkdown(e);
}

/** The ANSWER_MIME data: the safe Markdown, and which answer it is (live: still streaming). */
export interface IAnswerMark {
  markdown: string;
  answer?: { id: string; live?: boolean };
}

/** An answer output's data: text/html for every renderer, safe Markdown for this extension's. */
export interface IAnswerBundle {
  'text/html': string;
  [ANSWER_MIME]: IAnswerMark;
}

/** The stored answer once it ended (the same as answer_bundle in ending.py). */
export function answerBundle(
  text: string,
  e: IEnding,
  imageOrigins: readonly string[] = [],
  answerId?: string
): IAnswerBundle {
  const closed = closeOpenFence(text).replace(/\n+$/, '');
  const html = answerHtml((closed.trim() ? closed + '\n\n' : '') + endingMarkdown(e), imageOrigins);
  const mark: IAnswerMark = { markdown: finalMarkdown(text, e, imageOrigins) };
  if (answerId !== undefined) {
    mark.answer = { id: answerId };
  }
  return { 'text/html': html, [ANSWER_MIME]: mark };
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
  const closed = closeOpenFence(text).replace(/\n+$/, '');
  await nextTask();
  const html = answerHtml((closed.trim() ? closed + '\n\n' : '') + endingMarkdown(e), imageOrigins);
  await nextTask();
  const mark: IAnswerMark = { markdown: finalMarkdown(text, e, imageOrigins) };
  if (answerId !== undefined) {
    mark.answer = { id: answerId };
  }
  return { 'text/html': html, [ANSWER_MIME]: mark };
}

/** What a live answer's placeholder shows where this extension is not there to follow it. */
export const LIVE_HTML = '<p><em>This answer was still streaming when this output was written.</em></p>';

/** A live answer's placeholder: this extension follows it by id (live_mark in ending.py is its mark). */
export function liveMarker(answerId: string): IAnswerBundle {
  return { 'text/html': LIVE_HTML, [ANSWER_MIME]: { markdown: '', answer: { id: answerId, live: true } } };
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
