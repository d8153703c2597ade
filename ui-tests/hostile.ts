/**
 * A notebook from elsewhere is untrusted input: opening one must not make the page send a request
 * the notebook chose. Shared by the suite without collaboration (tests/hostile-notebook.spec.ts)
 * and the one with it (collab/hostile-notebook.spec.ts).
 *
 * The notebook carries live answer placeholders and stored answers whose ids try to leave
 * `cellmage/api/answers/` (`..`, backslashes, `%2e`, queries, fragments, absolute URLs, a long
 * string, non-strings), and cells whose ids are not nbformat ids. Opened (and one of its cells
 * asked from), the page may only request `cellmage/api/answers/<32 hex>[/events|/settle]`,
 * `cellmage/api/chat` without the hostile cell id, and JupyterLab's own reads; no kernel,
 * terminal, session or file appears, and each bad value is reported once on the console.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { APIRequestContext, Request } from '@playwright/test';

const ANSWER_MIME = 'application/vnd.cellmage.answer+json';

/** Ids that try to leave the answers route (the attack review's, and more). */
export const HOSTILE_IDS: unknown[] = [
  '../../../api/kernels?',
  '../../../api/contents?',
  '..\\..\\..\\api\\terminals?',
  '../../../logout',
  '%2e%2e/%2e%2e/%2e%2e/api/kernels?',
  '.%2E/.%2e/api/sessions?',
  '0123456789abcdef0123456789abcdef/../../../api/kernels?',
  '0123456789abcdef0123456789abcdef?x=',
  '0123456789abcdef0123456789abcdef#',
  'https://127.0.0.1:9/exfil',
  '//127.0.0.1:9/exfil',
  'A'.repeat(20000),
  1234567890, // (a number past 2^63 cannot be opened under collaboration at all: pycrdt panics)
  null,
  ['0123456789abcdef0123456789abcdef'],
  { toString: '0123456789abcdef0123456789abcdef' }
];

/** An id of the right shape that this server never made: followed (404) and settled as abandoned. */
const UNKNOWN_ID = 'feedfacefeedfacefeedfacefeedface';

const HOSTILE_CELL_IDS = ['../../x', 'a'.repeat(65), 'cell?x=1', 'cell#x'];

function placeholder(id: unknown, live: boolean): Record<string, unknown> {
  return {
    output_type: 'display_data',
    data: { 'text/html': '<p>answer</p>', [ANSWER_MIME]: { markdown: live ? '' : 'A stored answer.', answer: { id, live } } },
    metadata: {}
  };
}

function hostileNotebook(): Record<string, unknown> {
  const cells: Record<string, unknown>[] = [];
  HOSTILE_IDS.forEach((id, i) => {
    cells.push({ cell_type: 'code', id: `live-${i}`, source: `cell ${i}`, metadata: {}, execution_count: null, outputs: [placeholder(id, true)] });
    cells.push({ cell_type: 'code', id: `stored-${i}`, source: `stored ${i}`, metadata: {}, execution_count: null, outputs: [placeholder(id, false)] });
  });
  cells.push({ cell_type: 'code', id: 'known-shape', source: 'unknown answer', metadata: {}, execution_count: null, outputs: [placeholder(UNKNOWN_ID, true)] });
  HOSTILE_CELL_IDS.forEach((id, i) => {
    cells.push({ cell_type: 'code', id, source: `Prompt in a cell with a hostile id ${i}`, metadata: {}, execution_count: null, outputs: [] });
  });
  // No kernelspec: opening it starts no kernel (a kernel would be a request the notebook caused).
  return { nbformat: 4, nbformat_minor: 5, metadata: {}, cells };
}

/** What the page may request while it opens the notebook: JupyterLab's own reads, and answers by
 * ids of the strict shape. Anything under cellmage/ or api/ that changes state is listed. */
const ANSWER_ROUTE = /\/cellmage\/api\/answers\/[0-9a-f]{32}(\/events|\/settle)?$/;
const CHANGES_STATE = /\/(api\/(kernels|sessions|terminals|contents)|logout)(\/|\?|$)/;

/** A request to the extension of a strict shape: one of its routes, with no query but the cache
 * buster JupyterLab's ServerConnection adds (`?<digits>`), no fragment. */
function strict(url: string): boolean {
  const u = new URL(url);
  const route = ANSWER_ROUTE.test(u.pathname) || /\/cellmage\/api\/(status|chat|conversations\/[^/?#]+)$/.test(u.pathname);
  return route && /^(\?\d+)?$/.test(u.search) && u.hash === '';
}

interface ISeen {
  method: string;
  url: string;
  body: string | null;
}

async function inventory(request: APIRequestContext): Promise<Record<string, unknown>> {
  const list = async (path: string) => (await (await request.get(path)).json()) as any;
  const contents = await list('/api/contents');
  return {
    kernels: (await list('/api/kernels')).map((k: any) => k.id).sort(),
    sessions: (await list('/api/sessions')).map((s: any) => s.id).sort(),
    terminals: (await list('/api/terminals')).map((t: any) => t.name).sort(),
    files: contents.content.map((f: any) => f.name).sort()
  };
}

export function hostileNotebookTests(fake: () => string): void {
  test('a notebook from elsewhere makes the page request nothing it chose', async ({ page, request }, info) => {
    const name = `hostile-${info.project.name || 'p'}-${Date.now()}.ipynb`;
    await request.post(`${fake()}/reset`);
    await request.put(`/api/contents/${name}`, { data: { type: 'notebook', format: 'json', content: hostileNotebook() } });
    const before = await inventory(request);
    const seen: ISeen[] = [];
    page.on('request', (r: Request) => seen.push({ method: r.method(), url: r.url(), body: r.postData() }));
    const warnings: string[] = [];
    page.on('console', m => {
      if (m.type() === 'warning' && m.text().startsWith('CellMage: ignored')) {
        warnings.push(m.text());
      }
    });

    await page.evaluate(p => (window as any).jupyterapp.commands.execute('docmanager:open', { path: p }), name);
    // It names no kernel: JupyterLab asks which; none is started
    await page.locator('.jp-Dialog').getByRole('button', { name: 'No Kernel', exact: true }).click({ timeout: 30000 });
    const panel = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden)');
    // The one of the right shape was looked up (the server has no record: abandoned)
    await expect.poll(() => seen.filter(s => s.url.includes(`/answers/${UNKNOWN_ID}`)).length, { timeout: 30000 }).toBeGreaterThan(0);
    await expect(panel.locator('.jp-Cell', { hasText: 'unknown answer' }).locator('.jp-cellmage-Answer')).toContainText(
      'The page or kernel that asked for this answer closed before the answer ended.',
      { timeout: 30000 }
    );

    // Ask from a cell whose id is not an nbformat id: the request carries no cell id
    const hostileCell = await page.evaluate(() => {
      const notebook = (window as any).jupyterapp.shell.currentWidget.content;
      const index = notebook.widgets.findIndex((c: any) => c.model.id === '../../x');
      notebook.activeCellIndex = index;
      return index;
    });
    expect(hostileCell).toBeGreaterThan(0);
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell'));
    await expect(panel.locator('.jp-Cell', { hasText: 'hostile id 0' }).locator('.jp-cellmage-Answer')).toContainText('world', {
      timeout: 30000
    });
    const asks = seen.filter(s => new URL(s.url).pathname.endsWith('/cellmage/api/chat'));
    expect(asks).toHaveLength(1);
    expect(JSON.parse(asks[0].body!)).not.toHaveProperty('cell_id');

    // A request the page makes now, seen here: every request it started before was seen first
    const marker = `/api/status?cellmage-settled=${Date.now()}`;
    expect((await page.evaluate(url => fetch(url).then(r => r.status), marker))).toBe(200);
    expect(seen.some(s => s.url.endsWith(marker))).toBe(true);
    const stray = seen.filter(s => s.url.includes('/cellmage/') && !strict(s.url));
    expect(stray, 'cellmage requests outside the strict routes').toEqual([]);
    const stateChanges = seen.filter(s => CHANGES_STATE.test(new URL(s.url).pathname) && s.method !== 'GET');
    expect(stateChanges, 'requests that change the server').toEqual([]);
    expect(seen.filter(s => /logout/.test(s.url))).toEqual([]);
    const elsewhere = seen.filter(s => !s.url.startsWith(new URL(page.url()).origin) && !s.url.startsWith('data:'));
    expect(elsewhere, 'requests to other origins').toEqual([]);
    expect(await inventory(request)).toEqual(before);
    // Every live placeholder of the wrong shape shows as a stale answer, having asked nothing
    await expect(panel.locator('.jp-cellmage-Answer', { hasText: 'cannot be followed' })).toHaveCount(HOSTILE_IDS.length);
    // Each bad value said once, on one line
    expect(warnings.length).toBeGreaterThanOrEqual(HOSTILE_IDS.length);
    expect(warnings.every(w => !w.includes('\n') && w.length < 200)).toBe(true);

    await page.screenshot({ path: info.outputPath('hostile-notebook.png'), fullPage: false });
    await request.delete(`/api/contents/${name}`);
  });
}
