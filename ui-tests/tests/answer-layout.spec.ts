/**
 * What an answer looks like and offers, measured in the page: math laid out as a Markdown cell lays
 * out the same text (a superscript above its base, a subscript below, the same font size), code
 * blocks spaced and highlighted as in a Markdown cell, each code block's actions (Copy, Insert
 * below, Replace the cell above; live, stored and after reopening), an error said once with Retry,
 * and the magic's answer saying it waits for the model. JupyterLab (Notebook 7: notebook7-workflow.spec.ts).
 */
import { expect, test } from '@jupyterlab/galata';
import { Page } from '@playwright/test';

import { cells, code, CODE, control, expectSameLayout, LAYOUT, layout, markdown, onTop, openNotebook, received, reopen, script, words } from '../support';

/** The text the next `copy` event puts on the clipboard (read as it is set: a copy event's data
 * cannot be read back in every browser). */
async function nextCopy(page: Page): Promise<() => Promise<string>> {
  await page.evaluate(() => {
    (window as any).cellmageCopied = new Promise<string>(resolve =>
      window.addEventListener(
        'copy',
        event => {
          const data = event.clipboardData!;
          const set = data.setData.bind(data);
          data.setData = (type: string, value: string) => {
            resolve(value);
            set(type, value);
          };
        },
        { once: true, capture: true }
      )
    );
  });
  return () => page.evaluate(() => (window as any).cellmageCopied);
}

test.describe('An answer looks like a Markdown cell', () => {
  test('math and code blocks land where a Markdown cell puts the same text', async ({ page, request, tmpPath }) => {
    await script(request, { chunks: [LAYOUT.slice(0, 30), LAYOUT.slice(30)], interval: 0.1 });
    await openNotebook(page, request, tmpPath, [markdown(LAYOUT), code('Show the energy.')], false);

    await cells(page).nth(1).hover(); // (a cell not selected shows its control under the pointer)
    await control(cells(page).nth(1)).click();

    const answer = cells(page).nth(1).locator('.jp-cellmage-Answer');
    await expect(answer).toContainText('fake-fast · ', { timeout: 20000 }); // the stored answer's status line
    const [mine, theirs] = [await layout(answer), await layout(cells(page).nth(0).locator('.jp-MarkdownOutput'))];
    expectSameLayout(mine, theirs);
    await page.screenshot({ path: test.info().outputPath('math-and-code-beside-a-markdown-cell.png') });
  });
});

test.describe("A code block's actions", () => {
  test('Copy, Insert below and Replace the cell above act on exactly the code, live, stored and after reopening', async ({
    page,
    request,
    tmpPath
  }) => {
    const answer = `Try this:\n\n\`\`\`python\n${CODE}\n\`\`\`\n\nThat is all.`;
    await script(request, { chunks: [answer.slice(0, 40), answer.slice(40)], interval: 1.5 });
    await openNotebook(page, request, tmpPath, [code('x = "old"', 'above'), code('Loop over three numbers.', 'ask')], false);
    const ask = cells(page).nth(1);

    await ask.hover();
    await control(ask).click();

    // Live: the block has its actions while the answer still streams
    const pre = ask.locator('.jp-cellmage-Answer pre');
    await expect(pre).toHaveCount(1, { timeout: 20000 });
    await expect(ask).toHaveClass(/jp-cellmage-streaming/);
    await pre.hover();
    const action = (name: string) => pre.getByRole('button', { name, exact: true });
    await expect(action('Copy')).toBeVisible();
    expect(await onTop(action('Copy'))).toBe(true);
    await expect(ask.locator('.jp-cellmage-Answer')).toContainText('fake-fast · ', { timeout: 20000 });
    await pre.hover();
    await page.screenshot({ path: test.info().outputPath('code-block-actions.png') });

    const copied = await nextCopy(page);
    await action('Copy').click();
    expect(await copied()).toBe(CODE);

    await action('Replace the cell above').click();
    const sources = () =>
      page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.content.model.sharedModel.cells.map((c: any) => c.getSource()));
    await expect.poll(sources).toEqual([CODE, 'Loop over three numbers.']);

    await action('Insert below as a new code cell').click();
    await expect.poll(sources).toEqual([CODE, 'Loop over three numbers.', CODE]);
    expect(await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.content.model.cells.get(2).type)).toBe('code');
    // The buttons are not part of the answer: the stored answer holds no button
    const stored = await page.evaluate(() =>
      JSON.stringify((window as any).jupyterapp.shell.currentWidget.content.model.cells.get(1).outputs.toJSON())
    );
    expect(stored).not.toContain('button');

    // After reopening, the stored answer's block offers them again
    await reopen(page);
    await page.locator('.jp-Dialog').getByRole('button', { name: 'No Kernel', exact: true }).click(); // (it has none)
    const again = cells(page).nth(1).locator('.jp-cellmage-Answer pre');
    await expect(again).toHaveCount(1);
    await again.hover();
    await expect(again.getByRole('button', { name: 'Insert below as a new code cell', exact: true })).toBeVisible();
    await expect(again.getByRole('button', { name: 'Replace the cell above', exact: true })).toBeVisible();
  });

  test('a code block of an answer in a plain code cell offers no Replace', async ({ page, request, tmpPath }) => {
    await script(request, { chunks: ['```python\nprint(2)\n```'] });
    // The answer of a %%llm magic in a notebook without a kernel answers as a prompt; the cell
    // above is itself a prompt: there is no plain code to replace
    await openNotebook(page, request, tmpPath, [code('Q?', 'q', { cellmage: { prompt: true } }), code('%%llm\nAnd?', 'a')], false);
    await cells(page).nth(1).hover(); // (a cell not selected shows its control under the pointer)
    await control(cells(page).nth(1)).click();
    const pre = cells(page).nth(1).locator('.jp-cellmage-Answer pre');
    await expect(cells(page).nth(1).locator('.jp-cellmage-Answer')).toContainText('fake-fast · ', { timeout: 20000 });
    await pre.hover();
    await expect(pre.getByRole('button', { name: 'Copy', exact: true })).toBeVisible();
    await expect(pre.getByRole('button', { name: 'Replace the cell above', exact: true })).toBeHidden();
  });
});

test.describe('An error is said once', () => {
  test('a broken answer says what happened once, in plain words, with Retry that asks again', async ({ page, request, tmpPath }) => {
    await script(request, { chunks: words(6), interval: 0.05, drop_after: 3 }, { chunks: ['Recovered ', 'answer.'] });
    await openNotebook(page, request, tmpPath, [code('Tell me something.')], false);
    const cell = cells(page).first();

    await control(cell).click();

    const said = "The provider's connection broke mid-answer.";
    const output = cell.locator('.jp-OutputArea');
    await expect(output).toContainText(said, { timeout: 20000 });
    const visible = await output.evaluate(e => (e as HTMLElement).innerText);
    expect(visible.split(said).length - 1).toBe(1);
    expect(visible).toContain('word0'); // the partial text stays above it
    expect(visible).not.toMatch(/0\.0 s|HTTP|incomplete chunked|peer closed/);
    await expect(cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).toHaveCount(0);
    const retry = cell.getByRole('button', { name: 'Retry' });
    expect(await onTop(retry)).toBe(true);
    await page.screenshot({ path: test.info().outputPath('error-said-once.png') });

    await retry.click();

    await expect(cell.locator('.jp-cellmage-Answer')).toContainText('Recovered answer.', { timeout: 20000 });
    await expect(output).not.toContainText(said);
    await expect(cell.getByRole('button', { name: 'Retry' })).toHaveCount(0);
    expect(await received(request)).toHaveLength(2);
  });

  test('a refused request is one message that wraps at words, with Retry', async ({ page, request, tmpPath }) => {
    await script(request);
    await openNotebook(page, request, tmpPath, [code('%%llm --model no-such-model\nHello?')], false);
    const cell = cells(page).first();

    await control(cell).click();

    const output = cell.locator('.jp-OutputArea');
    await expect(output).toContainText("Unknown model 'no-such-model'", { timeout: 20000 });
    await expect(cell.locator('.jp-OutputArea-output')).toHaveCount(1);
    await expect(cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).toHaveCount(0);
    // Words wrap whole (no word broken across lines)
    expect(await output.locator('.jp-cellmage-Answer').evaluate(e => getComputedStyle(e).wordBreak)).not.toBe('break-all');
    expect(await onTop(cell.getByRole('button', { name: 'Retry' }))).toBe(true);
    expect(await received(request)).toHaveLength(0);
  });
});

test.describe("The magic's answer", () => {
  test('%%llm --no-stream says it waits for the model, with the seconds and Stop, then one error said once', async ({
    page,
    request,
    tmpPath
  }) => {
    await script(request, { chunks: ['Thought ', 'through.'], first_delay: 3 }, { chunks: words(6), interval: 0.05, drop_after: 3 });
    await openNotebook(page, request, tmpPath, [code('%load_ext cellmage_server'), code('%%llm --no-stream\nThink.'), code('%%llm\nBreak.')]);
    await page.notebook.runCell(0);

    await page.notebook.selectCells(1);
    await page.keyboard.press('Shift+Enter');

    const cell = cells(page).nth(1);
    const progress = cell.locator('.jp-cellmage-Progress');
    await expect(progress).toContainText('waiting for fake-fast…', { timeout: 20000 });
    await expect(progress).toContainText(/waiting for fake-fast… [1-9] s/, { timeout: 5000 });
    expect(await onTop(progress.getByRole('button', { name: 'Stop' }))).toBe(true);
    // Said once: the kernel's own text of it is hidden while the plugin shows it
    const visible = await cell.locator('.jp-OutputArea').evaluate(e => (e as HTMLElement).innerText);
    expect(visible.split('waiting for').length - 1).toBe(1);
    await page.screenshot({ path: test.info().outputPath('magic-waiting.png') });
    await expect(cell.locator('.jp-cellmage-Answer')).toContainText('Thought through.', { timeout: 20000 });
    await expect(progress).toHaveCount(0);

    await page.keyboard.press('Shift+Enter'); // (the next cell is selected after a run)

    const broken = cells(page).nth(2).locator('.jp-OutputArea');
    const said = "The provider's connection broke mid-answer.";
    await expect(broken).toContainText(said, { timeout: 20000 });
    const shown = await broken.evaluate(e => (e as HTMLElement).innerText);
    expect(shown.split(said).length - 1).toBe(1);
    expect(shown).not.toMatch(/Traceback|HTTP|peer closed/);
    await page.screenshot({ path: test.info().outputPath('magic-error-once.png') });
  });
});
