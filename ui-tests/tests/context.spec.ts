/**
 * The toolbar's context: `--cells N` sends the cells above as the page shows them (unsaved edits
 * included), `--error` the nearest error output above, `--snippet` a file by name; `--var` is
 * refused (no kernel access), and the status line names what went. "Explain this error" in an
 * error output asks in a new prompt cell below, and its answer's code block replaces the failing
 * cell's code.
 */
import { expect, test } from '@jupyterlab/galata';

import { cells, code, control, onTop, openNotebook, received, saved, script } from '../support';

const NAME_ERROR = {
  output_type: 'error',
  ename: 'NameError',
  evalue: "name 'valuez' is not defined",
  traceback: ['\u001b[0;31mNameError\u001b[0m: name \u001b[0;32m\'valuez\'\u001b[0m is not defined']
};

/** Everything the provider was sent for one answer, as one text. */
const sent = (request: any): string => JSON.stringify(request.body.messages);

test.describe('Context from the toolbar', () => {
  test('--cells, --error and --snippet send what the page shows, and the status line says what went', async ({
    page,
    request,
    tmpPath
  }) => {
    await script(request, { chunks: ['Because ', 'valuez is misspelled.'] });
    expect((await request.put(`/api/contents/${tmpPath}/llm_snippets`, { data: { type: 'directory' } })).ok()).toBe(true);
    const snippet = { type: 'file', format: 'text', content: 'Our convention: snake_case everywhere.' };
    expect((await request.put(`/api/contents/${tmpPath}/llm_snippets/conventions.md`, { data: snippet })).ok()).toBe(true);
    await openNotebook(
      page,
      request,
      tmpPath,
      [
        code('values = [1, 2, 3]'),
        { ...code('total = sum(values) / len(valuez)'), outputs: [NAME_ERROR], execution_count: 2 },
        code('%%llm --cells 2 --error --snippet conventions\nWhy does it fail?')
      ],
      false
    );
    // An edit not saved: the page's view is what goes
    await page.notebook.setCell(0, 'code', 'values = [1, 2, 3]  # edited, not saved');

    await cells(page).nth(2).hover();
    await control(cells(page).nth(2)).click();

    const answer = cells(page).nth(2).locator('.jp-cellmage-Answer');
    await expect(answer).toContainText('valuez is misspelled.', { timeout: 20000 });
    // The status line names each kind that went (in the order the server reports them)
    const status = (await answer.locator('p').last().textContent())!;
    expect(status).toMatch(/^fake-fast · /);
    for (const part of ['2 cells', 'error', 'conventions (']) {
      expect(status).toContain(part);
    }
    const [asked] = await received(request);
    const text = sent(asked);
    expect(text).toContain('values = [1, 2, 3]  # edited, not saved');
    expect(text).toContain('total = sum(values) / len(valuez)');
    expect(text).toContain("NameError: name 'valuez' is not defined");
    expect(text).not.toContain('\\u001b'); // terminal colours removed
    expect(text).toContain('Our convention: snake_case everywhere.');
    await page.screenshot({ path: test.info().outputPath('context-status-line.png') });
  });

  test('--var is refused with what to do, and nothing is asked', async ({ page, request, tmpPath }) => {
    await script(request);
    await openNotebook(page, request, tmpPath, [code('%%llm --var df\nDescribe df.')], false);

    await control(cells(page).first()).click();

    const output = cells(page).first().locator('.jp-OutputArea');
    await expect(output).toContainText('--var needs a kernel variable, and the toolbar asks without the kernel.');
    await expect(cells(page).first().getByRole('button', { name: 'Retry' })).toBeVisible();
    expect(await received(request)).toHaveLength(0);
  });
});

test.describe('Explain this error', () => {
  test('the button in an error output asks below with the code and traceback, and Replace fixes the cell', async ({
    page,
    request,
    tmpPath
  }) => {
    const fixed = 'values = [1, 2, 3]\ntotal = sum(values) / len(values)\nprint(total)';
    await script(request, { chunks: ['`valuez` is a typo of `values`:\n\n', '```python\n' + fixed + '\n```\n'], interval: 0.2 });
    const path = await openNotebook(page, request, tmpPath, [code('values = [1, 2, 3]\ntotal = sum(values) / len(valuez)\nprint(total)', 'failing')]);
    await page.notebook.runCell(0);
    const failing = cells(page).first();
    await expect(failing.locator('.jp-OutputArea')).toContainText('NameError');

    const explain = failing.getByRole('button', { name: 'Explain this error' });
    expect(await onTop(explain)).toBe(true);
    await page.screenshot({ path: test.info().outputPath('explain-button.png') });
    await explain.click();

    const prompt = cells(page).nth(1);
    await expect(prompt.locator('.jp-cellmage-Answer')).toContainText('fake-fast · 1 cell, error', { timeout: 20000 });
    expect(await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.content.model.sharedModel.cells[1].getSource())).toBe(
      '%%llm --cells 1 --error\nExplain this error and fix the code.'
    );
    const text = sent((await received(request))[0]);
    expect(text).toContain('total = sum(values) / len(valuez)');
    expect(text).toContain('NameError');

    const pre = prompt.locator('.jp-cellmage-Answer pre');
    await pre.hover();
    await expect(pre.getByRole('button', { name: 'Replace the cell above', exact: true })).toBeHidden();
    const replace = pre.getByRole('button', { name: "Replace the failing cell's code", exact: true });
    await expect(replace).toBeVisible();
    await page.screenshot({ path: test.info().outputPath('explain-answer.png') });
    await replace.click();

    await expect
      .poll(() => page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.content.model.sharedModel.cells[0].getSource()))
      .toBe(fixed);
    await page.notebook.runCell(0);
    await expect(failing.locator('.jp-OutputArea')).toContainText('2.0');
    await expect(failing.locator('.jp-OutputArea')).not.toContainText('NameError');
    await page.notebook.save();
    expect((await saved(request, path)).cells[1].metadata.cellmage).toEqual({ prompt: true, target: 'failing' });
  });

  test('a target id of the wrong shape, or of no cell here, offers no Replace', async ({ page, request, tmpPath }) => {
    await script(request, { chunks: ['```python\nprint(1)\n```'] }, { chunks: ['```python\nprint(2)\n```'] });
    await openNotebook(
      page,
      request,
      tmpPath,
      [
        code('print(0)', 'plain'),
        code('%%llm\nFix.', 'p1', { cellmage: { prompt: true, target: '../../x"><img>' } }),
        code('%%llm\nFix.', 'p2', { cellmage: { prompt: true, target: 'gone' } })
      ],
      false
    );
    for (const i of [1, 2]) {
      await cells(page).nth(i).hover();
      await control(cells(page).nth(i)).click();
      const pre = cells(page).nth(i).locator('.jp-cellmage-Answer pre');
      await expect(cells(page).nth(i).locator('.jp-cellmage-Answer')).toContainText('fake-fast · ', { timeout: 20000 });
      await pre.hover();
      await expect(pre.getByRole('button', { name: 'Copy', exact: true })).toBeVisible();
      await expect(pre.getByRole('button', { name: "Replace the failing cell's code", exact: true })).toBeHidden();
    }
  });
});

test("CellMage's own load line gets a hint under its ModuleNotFoundError", async ({ page, request, tmpPath }) => {
  await openNotebook(page, request, tmpPath, [code('%load_ext cellmage.integrations.ipython_magic')]);

  await page.notebook.runCell(0);

  const output = cells(page).first().locator('.jp-OutputArea');
  await expect(output).toContainText('ModuleNotFoundError');
  await expect(output.locator('.jp-cellmage-Hint')).toHaveText(
    'Using cellmage-server? Write %load_ext cellmage_server instead (README: Coming from CellMage); the name cellmage belongs to the CellMage package.'
  );
  await page.screenshot({ path: test.info().outputPath('cellmage-load-line-hint.png') });
});

