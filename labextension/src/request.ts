/**
 * JSON requests to the cellmage server extension, through ServerConnection
 * (which adds the token and the XSRF header the server requires).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { answerPath, apiPath } from './shapes';
import { SSEParser } from './sse';

/** The API root, relative to the server's base URL. */
export const API_PATH = 'cellmage/api';

/** `GET status`: what the server tells any authenticated client. */
export interface IStatus {
  version: string;
  configured: boolean;
  default_model: string | null;
  models: number;
  config_file_found: boolean;
  message: string;
  image_origins?: string[];
}

/** `GET conversations/{path}`: a notebook's turns, in order, and what they used. */
export interface IConversation {
  id: string;
  turns: { cell_id: string; prompt: string; answer: string; model: string | null; status: string }[];
  totals: { turns: number; prompt_tokens: number; completion_tokens: number; cost_usd: number | null };
}

/** An error answered by the server, carrying its HTTP status. */
export class CellmageRequestError extends Error {
  constructor(
    message: string,
    readonly status: number
  ) {
    super(message);
    this.name = 'CellmageRequestError';
  }
}

/** Call `path` under the API root and return its JSON body. */
export async function requestAPI<T>(
  path: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_PATH, apiPath(path));
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  // JSON boundary: the body is whatever the server sent.
  let body: any = null;
  if (text) {
    try {
      body = JSON.parse(text);
    } catch {
      body = { message: text };
    }
  }
  if (!response.ok) {
    const message =
      response.status === 404 && !body?.reason
        ? 'The cellmage server extension is not enabled on this Jupyter server.'
        : (body?.message ?? response.statusText);
    throw new CellmageRequestError(message, response.status);
  }
  return body as T;
}

/** One event of an answer's stream (wire contract v1). */
export interface IAnswerEvent {
  event: 'start' | 'delta' | 'usage' | 'error' | 'done' | string;
  // JSON boundary: the event's data object as the server sent it.
  data: any;
}

/**
 * POST `chat` and call `onEvent` for each event of the answer as it arrives. Resolves when the
 * stream ends; `signal` aborts the request, which makes the server cancel the provider's.
 * Errors before the stream (4xx/5xx) reject with a CellmageRequestError.
 */
export async function streamAnswer(
  body: Record<string, unknown>,
  onEvent: (event: IAnswerEvent) => void,
  signal: AbortSignal,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<void> {
  const url = URLExt.join(settings.baseUrl, API_PATH, 'chat');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(
      url,
      { method: 'POST', body: JSON.stringify(body), signal, headers: { Accept: 'text/event-stream' } },
      settings
    );
  } catch (error) {
    if (signal.aborted) {
      throw error;
    }
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  if (!response.ok || !response.body) {
    const text = await response.text();
    let message = response.statusText;
    try {
      message = JSON.parse(text).message ?? message;
    } catch {
      if (response.status === 404) {
        message = 'The cellmage server extension is not enabled on this Jupyter server.';
      }
    }
    throw new CellmageRequestError(message, response.status);
  }
  await readEvents(response.body, onEvent);
}

/** Call `onEvent` for each SSE event of `body` until it ends. */
async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (event: IAnswerEvent) => void): Promise<void> {
  const parser = new SSEParser();
  const reader = body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    const events = done ? parser.end() : parser.push(value);
    for (const e of events) {
      onEvent({ event: e.event, data: JSON.parse(e.data) });
    }
    if (done) {
      return;
    }
  }
}

/**
 * GET `answers/{id}/events`: follow an answer asked elsewhere (another page, a kernel). The same
 * events as the asker's stream: `start`, the text so far as one `delta`, later deltas, the end.
 */
export async function followAnswer(
  id: string,
  onEvent: (event: IAnswerEvent) => void,
  signal: AbortSignal,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<void> {
  const url = URLExt.join(settings.baseUrl, API_PATH, answerPath(id, 'events'));
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, { signal, headers: { Accept: 'text/event-stream' } }, settings);
  } catch (error) {
    if (signal.aborted) {
      throw error;
    }
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  if (!response.ok || !response.body) {
    let message = response.statusText;
    try {
      message = JSON.parse(await response.text()).message ?? message;
    } catch {
      // not JSON: the status says it
    }
    throw new CellmageRequestError(message, response.status);
  }
  await readEvents(response.body, onEvent);
}

/** `GET answers/{id}`: an answer as the server's board has it. */
export interface IAnswerRecord {
  id: string;
  model: string | null;
  persona: string | null;
  conversation: string | null;
  cell_id: string | null;
  running: boolean;
  text: string;
  // JSON boundary: the stream's last events' data.
  ending: { usage?: any; error?: { code: string; message: string } | null; done: any } | null;
  written: boolean;
}
