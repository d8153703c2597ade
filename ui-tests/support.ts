/**
 * What the browser tests share: the fake provider's controls (it runs inside the Jupyter server
 * under test, jupyter_server_test_config.py), notebooks made through the contents API and opened
 * in the page, reopening a notebook after a reload, and what the page shows (geometry, styles).
 */
import { expect, IJupyterLabPageFixture } from '@jupyterlab/galata';
import { APIRequestContext, Locator, Page } from '@playwright/test';

/** The fake provider of the default config's JupyterLab (8888); Notebook 7's is on 8892. */
export const FAKE = 'http://127.0.0.1:8891/_fake';
export const NOTEBOOK7 = 'http://localhost:8889';
export const NOTEBOOK7_FAKE = 'http://127.0.0.1:8892/_fake';
export const ANSWER_MIME = 'application/vnd.cellmage.answer+json';

/** Reset the fake and give it the scripts of the next answers, in order. */
export async function script(request: APIRequestContext, ...scripts: Record<string, unknown>[]): Promise<void> {
  await scriptAt(FAKE, request, ...scripts);
}

export async function scriptAt(fake: string, request: APIRequestContext, ...scripts: Record<string, unknown>[]): Promise<void> {
  await request.post(`${fake}/reset`);
  await request.post(`${fake}/script`, { data: scripts });
}

/** The requests the fake received (their bodies, when they were closed by the client, …). */
export async function received(request: APIRequestContext, fake = FAKE): Promise<any[]> {
  return (await (await request.get(`${fake}/received`)).json()).received;
}

export function words(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `word${i} `);
}

export const code = (source: string, id?: string, metadata: Record<string, unknown> = {}) => ({
  cell_type: 'code',
  ...(id ? { id } : {}),
  source,
  metadata,
  outputs: [],
  execution_count: null
});
export const markdown = (source: string) => ({ cell_type: 'markdown', source, metadata: {} });
export const PYTHON = { kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' } };

/** Write a notebook of these cells (with a kernel unless `kernel` is false) through the contents API. */
export async function putNotebook(
  request: APIRequestContext,
  path: string,
  cells: Record<string, unknown>[],
  kernel = true,
  base = ''
): Promise<void> {
  const content = { nbformat: 4, nbformat_minor: 5, metadata: kernel ? PYTHON : {}, cells };
  const response = await request.put(`${base}/api/contents/${path}`, { data: { type: 'notebook', format: 'json', content } });
  expect(response.ok()).toBe(true);
}

/** Write and open a notebook in JupyterLab, in the test's folder (galata removes it after the
 * test); without a kernel, answer JupyterLab's question "No Kernel". */
export async function openNotebook(
  page: IJupyterLabPageFixture,
  request: APIRequestContext,
  tmpPath: string,
  cells: Record<string, unknown>[],
  kernel = true
): Promise<string> {
  const path = `${tmpPath}/notebook.ipynb`;
  await putNotebook(request, path, cells, kernel);
  await page.evaluate(p => (window as any).jupyterapp.commands.execute('docmanager:open', { path: p }), path);
  if (!kernel) {
    await page.locator('.jp-Dialog').getByRole('button', { name: 'No Kernel', exact: true }).click();
  } else {
    // Its kernel has started (a run command before would find no kernel to run code with)
    await page.waitForFunction(() => (window as any).jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'idle');
  }
  await expect(page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').first()).toBeVisible();
  return path;
}

/** The cells of the notebook in view. */
export const cells = (page: Page): Locator => page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell');

/** The ✦ control of a cell (the stop control while it answers). */
export const control = (cell: Locator): Locator => cell.locator('.jp-cellmage-AskControl');

/** The notebook at its path as saved. */
export async function saved(request: APIRequestContext, path: string, base = ''): Promise<any> {
  return (await (await request.get(`${base}/api/contents/${path}?content=1`)).json()).content;
}

/** Save, reload the page and open the notebook again (galata's own wait expects the launcher). */
export async function reopen(page: IJupyterLabPageFixture): Promise<string> {
  const path: string = await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.context.path);
  await page.notebook.save();
  await page.reload({ waitForIsReady: false });
  await page.waitForFunction(() => (window as any).jupyterapp?.started !== undefined && !document.querySelector('#jupyterlab-splash'));
  await page.evaluate(() => (window as any).jupyterapp.started);
  await page.evaluate(p => (window as any).jupyterapp.commands.execute('docmanager:open', { path: p }), path);
  await expect.poll(() => page.evaluate(() => (window as any).jupyterapp.shell.currentWidget?.context?.path)).toBe(path);
  return path;
}

export interface IBox {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** The box of an element in the page, or null when it is not laid out. */
export async function box(locator: Locator): Promise<IBox | null> {
  const b = await locator.boundingBox();
  return b && { left: b.x, top: b.y, right: b.x + b.width, bottom: b.y + b.height };
}

/** Whether the element is visible and really on top at its centre (not covered, not clipped). */
export async function onTop(locator: Locator): Promise<boolean> {
  return locator.evaluate(element => {
    const r = element.getBoundingClientRect();
    if (r.width === 0 || r.height === 0 || getComputedStyle(element).visibility !== 'visible') {
      return false;
    }
    const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
    return hit !== null && (hit === element || element.contains(hit));
  });
}
