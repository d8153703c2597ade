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

/* What an answer's layout is measured by (answer-layout.spec.ts, notebook7-workflow.spec.ts). */

export const MATH = 'Energy $|\\alpha|^2$ and the index $x_i$ of a sum.';
export const CODE = 'for i in range(3):\n    print(i)  # kept: four spaces';
export const LAYOUT = `${MATH}\n\n\`\`\`python\n${CODE}\n\`\`\`\n\nAfter the code.`;

export interface IScript {
  /** The script's top minus its base's top, and bottom minus bottom (px). */
  top: number;
  bottom: number;
}

export interface ILayout {
  fontSize: string;
  sup: IScript;
  sub: IScript;
  /** The code block: its margins and the gap to the paragraph after it. */
  pre: { marginTop: string; marginBottom: string; gap: number; whiteSpace: string; highlighted: number; text: string };
}

/** Where math and the code block land in a rendered Markdown container. */
export async function layout(scope: Locator): Promise<ILayout> {
  await expect(scope.locator('mjx-container').first()).toBeVisible({ timeout: 20000 });
  return scope.evaluate(root => {
    const script = (selector: string) => {
      const element = root.querySelector(selector)!;
      const base = element.firstElementChild!.getBoundingClientRect();
      const s = element.querySelector(':scope > mjx-script')!.getBoundingClientRect();
      return { top: s.top - base.top, bottom: s.bottom - base.bottom };
    };
    const pre = root.querySelector('pre')!;
    const style = getComputedStyle(pre);
    const next = pre.nextElementSibling!.getBoundingClientRect();
    return {
      fontSize: getComputedStyle(root.querySelector('mjx-container')!).fontSize,
      sup: script('mjx-msup'),
      sub: script('mjx-msub'),
      pre: {
        marginTop: style.marginTop,
        marginBottom: style.marginBottom,
        gap: Math.round(next.top - pre.getBoundingClientRect().bottom),
        whiteSpace: getComputedStyle(pre.querySelector('code') ?? pre).whiteSpace,
        highlighted: pre.querySelectorAll('code span[class]').length,
        text: (pre.querySelector('code') ?? pre).textContent ?? ''
      }
    };
  });
}

/** The answer's layout is the Markdown cell's, within a pixel. */
export function expectSameLayout(answer: ILayout, cell: ILayout): void {
  expect(answer.fontSize).toBe(cell.fontSize);
  for (const key of ['sup', 'sub'] as const) {
    expect(Math.abs(answer[key].top - cell[key].top)).toBeLessThanOrEqual(1);
    expect(Math.abs(answer[key].bottom - cell[key].bottom)).toBeLessThanOrEqual(1);
  }
  // A superscript is raised above its base's bottom, a subscript lowered below its base's top
  expect(answer.sup.bottom).toBeLessThan(-2);
  expect(answer.sub.top).toBeGreaterThan(2);
  expect(answer.pre.marginTop).toBe(cell.pre.marginTop);
  expect(answer.pre.marginBottom).toBe(cell.pre.marginBottom);
  expect(Math.abs(answer.pre.gap - cell.pre.gap)).toBeLessThanOrEqual(1);
  expect(answer.pre.gap).toBeGreaterThan(4);
  expect(answer.pre.whiteSpace).toMatch(/^pre/);
  expect(answer.pre.text).toBe(cell.pre.text);
  expect(answer.pre.text.replace(/\n$/, '')).toBe(CODE);
  expect(answer.pre.highlighted).toBe(cell.pre.highlighted);
  expect(answer.pre.highlighted).toBeGreaterThan(0);
}
