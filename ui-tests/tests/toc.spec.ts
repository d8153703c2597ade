/**
 * JupyterLab's table of contents, at its defaults (outputs' headings included), lists an answer's
 * headings (src/toc.ts): while the answer streams, then from the stored answer, and after save and
 * reopen; as plain text, whatever the model put in a heading (HTML, links, images, script): nothing
 * in the table of contents runs script or fetches a URL the model chose.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { APIRequestContext } from '@playwright/test';

const FAKE = 'http://127.0.0.1:8891/_fake';
const EXFIL = 'http://127.0.0.1:8891/exfil';

/** The answer's headings as the table of contents must show them, in order, and the Markdown. */
const HEADINGS = [
  'Load the raw exports once',
  'Check the time zones',
  '🖼pixel Pictures',
  // Shown as written: in the answer's safe Markdown, `<` is text.
  'Hi <img src=x onerror="window.cellmagePwned=\'toc\'"> there<script>window.cellmagePwned=\'toc-script\'</script>',
  'See the docs',
  'Schedule the nightly run'
];
const ANSWER = [
  'A plan in four steps.',
  '## Load the raw exports once',
  'Parse the CSV files once and keep Parquet.',
  '### Check the time zones',
  '```bash\n# not a heading: a comment in code\nls raw/\n```',
  `## ![pixel](${EXFIL}/toc-pixel.png) Pictures`,
  `## Hi <img src=x onerror="window.cellmagePwned='toc'"> there<script>window.cellmagePwned='toc-script'</script>`,
  `### See [the docs](javascript:window.cellmagePwned='toc-link')`,
  '## Schedule the nightly run',
  'Run it every night at 02:00 UTC.',
  'END-OF-ANSWER'
].join('\n\n');

/** The answer in small deltas, slowly enough that the headings show before it ends. */
function chunks(): string[] {
  const out: string[] = [];
  for (let i = 0; i < ANSWER.length; i += 12) {
    out.push(ANSWER.slice(i, i + 12));
  }
  return out;
}

async function script(request: APIRequestContext, interval: number) {
  await request.post(`${FAKE}/reset`);
  await request.post(`${FAKE}/script`, { data: [{ chunks: chunks(), interval }] });
}

const entries = (page: IJupyterLabPageFixture) => page.locator('.jp-TableOfContents-content .jp-tocItem-content');

async function expectInert(page: IJupyterLabPageFixture, request: APIRequestContext, where: string) {
  await page.waitForTimeout(1000); // time for any image to load
  expect(await page.evaluate(() => (window as any).cellmagePwned), `script ran (${where})`).toBeUndefined();
  expect((await (await request.get(`${FAKE}/exfil`)).json()).exfil, `fetched a URL (${where})`).toEqual([]);
  const active = await page.evaluate(
    () => document.querySelectorAll('.jp-TableOfContents-content :is(img, script, iframe, a[href], [onerror])').length
  );
  expect(active, `active elements in the table of contents (${where})`).toBe(0);
}

test.describe('The table of contents lists an answer\'s headings', () => {
  test.beforeEach(async ({ page }) => {
    await page.evaluate(() => ((window as any).cellmagePwned = undefined));
  });

  test('as it streams, once stored, and after reopen: as plain text', async ({ page, request }) => {
    await script(request, 0.15); // ~60 deltas: ~9 s
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'markdown', '# Air quality analysis');
    await page.notebook.addCell('code', 'Outline how to restructure this analysis.');
    await page.evaluate(() => ((window as any).jupyterapp.shell.currentWidget.content.widgets[0].rendered = true));
    await page.notebook.selectCells(1);
    expect(await page.notebook.getCellCount()).toBe(2);
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('toc:show-panel'));
    await expect(entries(page)).toHaveText(['Air quality analysis']);

    await page.evaluate(() => void (window as any).jupyterapp.commands.execute('cellmage:run-cell'));
    const cell = page.locator('.jp-Cell').nth(1);
    // While it streams: the first heading is listed before the answer ends.
    await expect(entries(page).nth(1)).toHaveText(HEADINGS[0], { timeout: 20000 });
    await expect(cell).toHaveClass(/jp-cellmage-streaming/);
    await page.screenshot({ path: 'test-results/toc-streaming.png' });

    await expect(cell.locator('.jp-OutputArea-output').first()).toContainText('END-OF-ANSWER', { timeout: 30000 });
    await expect(cell).not.toHaveClass(/jp-cellmage-streaming/);
    await expect(entries(page)).toHaveText(['Air quality analysis', ...HEADINGS]);
    // The stored answer is the notebook's output now; its headings, not the live ones, are listed.
    const stored = await page.evaluate(() => {
      const output = (window as any).jupyterapp.shell.currentWidget.content.widgets[1].model.outputs.get(0);
      return output.data['application/vnd.cellmage.answer+json'].answer.live === true;
    });
    expect(stored).toBe(false);
    await expectInert(page, request, 'after the answer');
    await page.screenshot({ path: 'test-results/toc-answer-headings.png' });

    // An entry of the answer takes the notebook to its heading in the output.
    await entries(page).filter({ hasText: 'Schedule the nightly run' }).click();
    await expect(cell.locator('.jp-cellmage-Answer h2', { hasText: 'Schedule the nightly run' })).toBeInViewport();

    const path: string = await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.context.path);
    await page.notebook.save();
    await page.reload({ waitForIsReady: false });
    await page.waitForFunction(() => (window as any).jupyterapp?.started !== undefined && !document.querySelector('#jupyterlab-splash'));
    await page.evaluate(() => (window as any).jupyterapp.started);
    await page.evaluate(() => ((window as any).cellmagePwned = undefined));
    await page.evaluate(p => (window as any).jupyterapp.commands.execute('docmanager:open', { path: p }), path);
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('toc:show-panel'));
    await expect(entries(page)).toHaveText(['Air quality analysis', ...HEADINGS]);
    await expectInert(page, request, 'after reopen');
  });
});
