/**
 * JSON requests to the cellmage server extension, through ServerConnection
 * (which adds the token and the XSRF header the server requires).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The API root, relative to the server's base URL. */
export const API_PATH = 'cellmage/api';

/** `GET status`: what the server tells any authenticated client. */
export interface IStatus {
  version: string;
  configured: boolean;
  default_model: string | null;
  models: number;
  config_file: string | null;
  message: string;
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
  const url = URLExt.join(settings.baseUrl, API_PATH, path);
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
