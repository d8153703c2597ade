/**
 * Prompt cells under real-time collaboration (playwright.collab.config.js): jupyter-collaboration
 * provides a cell executor of its own, and this plugin's must work with it. Run All answers the
 * prompt cells through the server and runs the code cells in the kernel, in notebook order.
 */
import { expect, test } from '@jupyterlab/galata';

import { cells, code, openNotebook, received, scriptAt } from '../support';

declare const process: { env: Record<string, string | undefined> }; // (no @types/node here)

const FAKE = process.env.CELLMAGE_UI_COLLAB_FAKE ?? '';
const PROMPT = { cellmage: { prompt: true } };

test.describe('collaboration on', () => {
  test.skip(!FAKE, 'needs real-time collaboration: run with -c playwright.collab.config.js');

  test('Run All answers prompt cells as prompts and the kernel runs the rest, in order', async ({ page, request, tmpPath }) => {
    await scriptAt(FAKE, request, { chunks: ['Forty', '-one.'], interval: 0.2 });
    await openNotebook(page, request, tmpPath, [code('x = 41'), code('What is x?', 'ask', PROMPT), code('print(x + 1)')]);
    // jupyter-collaboration is on in this page, and its executor gave way to this plugin's
    expect(await page.evaluate(() => (window as any).jupyterapp.hasPlugin('@jupyter/docprovider-extension:notebook-cell-executor'))).toBe(
      false
    );
    expect(await page.evaluate(() => (window as any).jupyterapp.isPluginActivated('cellmage-server:cell-executor'))).toBe(true);

    await page.evaluate(() => (window as any).jupyterapp.commands.execute('notebook:run-all-cells'));

    await expect(cells(page).nth(2)).toContainText('42', { timeout: 30000 });
    await expect(cells(page).nth(1).locator('.jp-cellmage-Answer')).toContainText('Forty-one.');
    await expect(page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).toHaveCount(0);
    const counts = await page.evaluate(() =>
      (window as any).jupyterapp.shell.currentWidget.content.widgets.map((c: any) => c.model.executionCount)
    );
    expect(counts).toEqual([1, null, 2]);
    expect(await received(request, FAKE)).toHaveLength(1);
    await page.screenshot({ path: test.info().outputPath('collab-run-all.png') });
  });
});
