/**
 * The installed wheel in a browser, on the oldest and the newest JupyterLab it supports
 * (playwright.wheel.config.js): the page loads the plugin without a console complaint, and the
 * cell toolbar's button asks, streams the answer and stops it.
 *
 * Plain Playwright, not galata: galata's page helpers come with the JupyterLab they were
 * released for, and this test drives two.
 */
import { APIRequestContext, expect, Page, test } from '@playwright/test';

import { fakeProvider, words } from '../helpers';

const TOKEN = process.env.CELLMAGE_WHEEL_TOKEN!;
const auth = { Authorization: `token ${TOKEN}` };

function fake(): string {
  return (test.info().project.metadata as { fake: string }).fake;
}

const script = (request: APIRequestContext, ...scripts: Record<string, unknown>[]) => fakeProvider(fake()).script(request, ...scripts);
const received = (request: APIRequestContext) => fakeProvider(fake()).received(request);

/** A notebook on the server whose one code cell holds `source`. */
async function notebook(request: APIRequestContext, name: string, source: string) {
  const content = {
    cells: [{ cell_type: 'code', execution_count: null, id: 'ask', metadata: {}, outputs: [], source }],
    metadata: { kernelspec: { name: 'python3', display_name: 'Python 3 (ipykernel)', language: 'python' } },
    nbformat: 4,
    nbformat_minor: 5
  };
  const response = await request.put(`/api/contents/${name}`, {
    headers: auth,
    data: { type: 'notebook', format: 'json', content }
  });
  expect(response.ok()).toBe(true);
}

/** What the page logs: warnings and errors, and uncaught exceptions. */
function complaints(page: Page): string[] {
  const seen: string[] = [];
  page.on('console', message => {
    if (message.type() === 'warning' || message.type() === 'error') {
      seen.push(`${message.type()}: ${message.text()}`);
    }
  });
  page.on('pageerror', error => seen.push(`pageerror: ${error.message}`));
  return seen;
}

test('the plugin loads without complaint, and the cell button asks, streams and stops', async ({
  page,
  request
}) => {
  const logged = complaints(page);
  await notebook(request, 'smoke.ipynb', 'Write at length.');
  await script(request, { chunks: words(200), interval: 0.05 });

  await page.goto(`/lab/tree/smoke.ipynb?token=${TOKEN}`);
  const cell = page.locator('.jp-Notebook .jp-Cell').first();
  await expect(cell).toBeVisible({ timeout: 60000 });
  await cell.locator('.jp-InputArea-prompt').click(); // select the cell: its toolbar shows
  const ask = cell.locator('.jp-cell-toolbar [data-command="cellmage:run-cell"]');
  await expect(ask).toBeVisible();
  await page.screenshot({ path: test.info().outputPath('before-ask.png') });

  await ask.click();

  const answer = cell.locator('.jp-OutputArea-output').first();
  await expect(answer).toContainText('word3', { timeout: 20000 });
  await expect(cell).toHaveClass(/jp-cellmage-streaming/);
  await page.screenshot({ path: test.info().outputPath('streaming.png') });

  await ask.click(); // the same button stops a running answer

  await expect(answer).toContainText('Stopped');
  await expect(cell).not.toHaveClass(/jp-cellmage-streaming/);
  await expect.poll(async () => (await received(request))[0]?.closed_by_client).toBe(true);
  expect((await received(request))[0].chunks_sent).toBeLessThan(150);
  await page.screenshot({ path: test.info().outputPath('stopped.png') });

  // Shared modules JupyterLab cannot satisfy ("Unsatisfied version"), a plugin that failed to
  // activate, any exception: the page warned of nothing while it loaded the plugin and ran an
  // answer. (JupyterLab 4.2 warns that its own language pack, en_US, is not installed.)
  await test.info().attach('console', { body: logged.join('\n') || '(nothing)', contentType: 'text/plain' });
  expect(logged.filter(line => !/^warning: Language pack 'en_US' not installed!$/.test(line))).toEqual([]);
});
