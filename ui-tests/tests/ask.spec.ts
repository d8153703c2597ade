import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';

import { received, script, words } from '../helpers';

/** A new notebook whose first cell holds `source`, selected, with its cell toolbar showing. */
async function promptCell(page: IJupyterLabPageFixture, source: string) {
  await page.notebook.createNew();
  await page.notebook.setCell(0, 'code', source);
  await page.notebook.selectCells(0);
}

const askButton = (page: IJupyterLabPageFixture) =>
  page.locator('.jp-cell-toolbar [data-command="cellmage:run-cell"]').first();

/** Record, from inside the page, when the active cell's output model changes and when the text
 * its output area shows grows. */
async function watchOutputs(page: IJupyterLabPageFixture) {
  await page.evaluate(() => {
    const panel = (window as any).jupyterapp.shell.currentWidget;
    const cell = panel.content.activeCell;
    const stamps: number[] = [];
    const shown: number[] = [];
    (window as any).cellmageStamps = stamps;
    (window as any).cellmageShown = shown;
    cell.model.outputs.changed.connect(() => stamps.push(performance.now()));
    let length = 0;
    new MutationObserver(() => {
      const now = (cell.node.querySelector('.jp-OutputArea')?.textContent ?? '').length;
      if (now > length) {
        length = now;
        shown.push(performance.now());
      }
    }).observe(cell.node, { childList: true, subtree: true, characterData: true });
  });
}

const outputText = (page: IJupyterLabPageFixture) =>
  page.locator('.jp-Cell').first().locator('.jp-OutputArea-output').first();

test.describe('Ask the LLM from a cell', () => {
  test('the toolbar button streams the answer into the output, incrementally', async ({ page, request }) => {
    await script(request, { chunks: words(30), interval: 0.06 });
    await promptCell(page, 'Explain streaming.');
    await watchOutputs(page);

    await askButton(page).click();

    await expect(outputText(page)).toContainText('word29', { timeout: 20000 });
    await expect(page.locator('.jp-Cell').first()).not.toHaveClass(/jp-cellmage-streaming/);
    const shown: number[] = await page.evaluate(() => (window as any).cellmageShown);
    // The text on screen grew many times, spread over the ~1.8 s the provider took: streamed
    expect(shown.length).toBeGreaterThan(5);
    expect(shown[shown.length - 1] - shown[0]).toBeGreaterThan(800);
    // ... while the notebook's model got the answer once: cleared, the live placeholder, the
    // stored answer (collaborators and the document store get no per-update copies).
    const stamps: number[] = await page.evaluate(() => (window as any).cellmageStamps);
    expect(stamps.length).toBeLessThanOrEqual(3);
  });

  test('the control shows on code cells only', async ({ page }) => {
    await promptCell(page, 'A prompt in a code cell.');
    await page.notebook.addCell('markdown', 'Some *notes*.');
    await page.notebook.addCell('raw', 'raw text');
    const button = (index: number) =>
      page.locator('.jp-Cell').nth(index).locator('.jp-cell-toolbar [data-command="cellmage:run-cell"]');

    await page.notebook.selectCells(0);
    await expect(button(0)).toBeVisible();
    for (const index of [1, 2]) {
      await page.notebook.selectCells(index);
      // The cell's toolbar is there (JupyterLab's own items), without the CellMage control
      await expect(page.locator('.jp-Cell').nth(index).locator('.jp-cell-toolbar')).toBeVisible();
      await expect(button(index)).toBeHidden();
    }
    await page.screenshot({ path: test.info().outputPath('code-cells-only.png') });
  });

  test('a %%llm line sets model and temperature on the provider call', async ({ page, request }) => {
    await script(request, { chunks: ['ok'] });
    await promptCell(page, '%%llm --model fake-other --temperature 0.3\nSay hi');

    await askButton(page).click();

    await expect(outputText(page)).toContainText('ok');
    const calls = await received(request);
    expect(calls[0].body.model).toBe('fake-other');
    expect(calls[0].body.temperature).toBe(0.3);
    expect(calls[0].body.messages.at(-1).content.trim()).toBe('Say hi');
  });

  test('stop mid-answer closes the provider request and keeps the partial text', async ({ page, request }) => {
    await script(request, { chunks: words(200), interval: 0.05 });
    await promptCell(page, 'Write at length.');
    await askButton(page).click();
    await expect(outputText(page)).toContainText('word3', { timeout: 20000 });
    await page.screenshot({ path: test.info().outputPath('streaming.png') });

    await askButton(page).click(); // the same button now stops

    await expect(outputText(page)).toContainText('Stopped');
    await expect(outputText(page)).toContainText('word0 word1 word2 word3');
    await expect.poll(async () => (await received(request))[0].closed_by_client).toBe(true);
    expect((await received(request))[0].chunks_sent).toBeLessThan(100);
  });

  test('a provider failure mid-answer shows a themed error under the partial text', async ({ page, request }) => {
    await script(request, { chunks: words(6), interval: 0.05, drop_after: 3 });
    await promptCell(page, 'This will break.');

    await askButton(page).click();

    const error = page.locator('.jp-Cell').first().locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
    await expect(outputText(page)).toContainText("The provider's connection broke mid-answer."); // said once, in the answer
    await expect(error).toHaveCount(0);
    await expect(outputText(page)).toContainText('word0 word1 word2');
    await page.screenshot({ path: test.info().outputPath('error.png') });
  });

  test('a refused request says what to do, without an answer', async ({ page, request }) => {
    await script(request);
    await promptCell(page, '%%llm --model no-such-model\nhi');

    await askButton(page).click();

    const error = page.locator('.jp-Cell').first().locator('.jp-OutputArea-output');
    await expect(error).toContainText("Unknown model 'no-such-model'");
    await expect(error).toHaveCount(1);
    await expect(error).not.toContainText('HTTP'); // one message, in plain words
    expect(await received(request)).toHaveLength(0);
  });

  test('Escape stops the answer', async ({ page, request }) => {
    await script(request, { chunks: words(200), interval: 0.05 });
    await promptCell(page, 'Write at length.');
    await askButton(page).click();
    await expect(outputText(page)).toContainText('word2', { timeout: 20000 });

    await page.keyboard.press('Escape');

    await expect(outputText(page)).toContainText('Stopped');
    await expect.poll(async () => (await received(request))[0].closed_by_client).toBe(true);
  });

  test('the saved notebook holds the Markdown answer and its metadata', async ({ page, request }) => {
    await script(request, { chunks: ['**bold** ', 'answer'] });
    // The cell ran as code in the kernel first: it has an execution count, which the answer clears
    await promptCell(page, '40 + 2');
    await page.notebook.runCell(0);
    await expect(page.locator('.jp-Cell').first().locator('.jp-InputPrompt')).toContainText('[1]');
    expect(await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.content.model.cells.get(0).executionCount)).toBe(1);
    await page.notebook.setCell(0, 'code', 'Answer in Markdown.');
    await page.notebook.selectCells(0);
    await askButton(page).click();
    await expect(outputText(page)).toContainText('bold answer');

    await page.notebook.save();

    const path = await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.context.path);
    const response = await request.get(`/api/contents/${path}?content=1`);
    const cell = (await response.json()).content.cells[0];
    expect(cell.execution_count).toBeNull();
    expect(cell.outputs[0].output_type).toBe('display_data');
    expect(cell.outputs[0].data['application/vnd.cellmage.answer+json'].markdown).toMatch(/^\*\*bold\*\* answer\n\n\*fake\\-fast · 7 → 3 tokens · [0-9]\\\.[0-9] s\*$/);
    expect(cell.outputs[0].data['text/html']).toContain('<strong>bold</strong> answer');
    const meta = cell.outputs[0].metadata.cellmage;
    expect(meta.model).toBe('fake-fast');
    expect(meta.usage.total_tokens).toBe(10);
    expect(meta.finish_reason).toBe('stop');
    expect(typeof meta.elapsed_ms).toBe('number');
  });

  test('the default model setting is used when the cell names none', async ({ page, request }) => {
    await script(request, { chunks: ['ok'] });
    await page.evaluate(async () => {
      const registry = await (window as any).galata.getPlugin('@jupyterlab/apputils-extension:settings');
      await registry.set('cellmage-server:plugin', 'model', 'fake-other');
    });
    try {
      await promptCell(page, 'Which model?');
      await askButton(page).click();
      await expect(outputText(page)).toContainText('ok');
      expect((await received(request))[0].body.model).toBe('fake-other');
    } finally {
      await page.evaluate(async () => {
        const registry = await (window as any).galata.getPlugin('@jupyterlab/apputils-extension:settings');
        await registry.set('cellmage-server:plugin', 'model', '');
      });
    }
  });
});

