/**
 * The lab plugin in Notebook 7: the ✦ control shows on a cell whose first line is long (Notebook 7
 * hides the cell toolbar there too), the answer says it waits for the model with Stop, and its math
 * and code blocks land where a Markdown cell puts the same text, in MathJax's fonts.
 */
import { expect, Locator, test } from '@playwright/test';

import { box, code, control, expectSameLayout, LAYOUT, layout, markdown, NOTEBOOK7, NOTEBOOK7_FAKE, onTop, putNotebook, scriptAt } from '../support';

test.describe('Notebook 7', () => {
  test('the control shows on a long first line, the answer waits visibly, and math matches a Markdown cell', async ({
    page,
    request
  }) => {
    await scriptAt(NOTEBOOK7_FAKE, request, { chunks: [LAYOUT], first_delay: 2 });
    const name = `nb7-layout-${Date.now()}.ipynb`;
    const long = 'Explain, in plain words and with one short example, what the energy of a quantum state means and why';
    await putNotebook(request, name, [markdown(LAYOUT), code(long)], false, NOTEBOOK7);
    try {
      await page.goto(`${NOTEBOOK7}/notebooks/${name}`);
      await page.getByRole('dialog').getByRole('button', { name: 'No Kernel' }).click();
      const cell = page.locator('.jp-Cell').nth(1);
      await cell.locator('.jp-InputArea-editor').click();
      await page.keyboard.press('Escape');
      const button = control(cell);
      await expect(button).toBeVisible();
      expect(await onTop(button)).toBe(true);
      const [b, editor] = [await box(button), await box(cell.locator('.jp-InputArea-editor'))];
      expect(b!.right).toBeLessThanOrEqual(editor!.left);

      await button.click();

      await expect(cell.locator('.jp-cellmage-Progress')).toContainText('waiting for fake-fast…');
      expect(await onTop(cell.locator('.jp-cellmage-Progress').getByRole('button', { name: 'Stop' }))).toBe(true);
      await page.screenshot({ path: test.info().outputPath('notebook7-waiting.png') });
      const answer = cell.locator('.jp-cellmage-Answer');
      await expect(answer).toContainText('fake-fast · ', { timeout: 20000 });
      expectSameLayout(await layout(answer), await layout(page.locator('.jp-Cell').nth(0).locator('.jp-MarkdownOutput')));
      // Math in the answer uses MathJax's fonts, as the Markdown cell's does (not a serif fallback)
      const family = (scope: Locator) => scope.locator('mjx-c').first().evaluate(e => getComputedStyle(e).fontFamily);
      expect(await family(answer)).toBe(await family(page.locator('.jp-Cell').nth(0).locator('.jp-MarkdownOutput')));
      await page.screenshot({ path: test.info().outputPath('notebook7-answer.png') });
    } finally {
      await request.delete(`${NOTEBOOK7}/api/contents/${name}`);
    }
  });

  test('Shift+Enter answers a prompt cell and a %%llm cell as prompts, with no kernel', async ({ page, request }) => {
    await scriptAt(NOTEBOOK7_FAKE, request, { chunks: ['One.'] }, { chunks: ['Two.'] });
    const name = `nb7-run-${Date.now()}.ipynb`;
    await putNotebook(request, name, [code('First?', 'a', { cellmage: { prompt: true } }), code('%%llm\nSecond?', 'b')], false, NOTEBOOK7);
    try {
      await page.goto(`${NOTEBOOK7}/notebooks/${name}`);
      await page.getByRole('dialog').getByRole('button', { name: 'No Kernel' }).click();
      const first = page.locator('.jp-Cell').first();
      await first.locator('.jp-InputArea-editor').click();
      await page.keyboard.press('Escape');

      await page.keyboard.press('Shift+Enter');
      await expect(first.locator('.jp-cellmage-Answer')).toContainText('One.', { timeout: 20000 });
      await page.keyboard.press('Shift+Enter');

      await expect(page.locator('.jp-Cell').nth(1).locator('.jp-cellmage-Answer')).toContainText('Two.', { timeout: 20000 });
      await expect(page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).toHaveCount(0);
      await expect(page.getByRole('dialog')).toHaveCount(0); // no "Select Kernel"
      await page.screenshot({ path: test.info().outputPath('notebook7-shift-enter.png') });
    } finally {
      await request.delete(`${NOTEBOOK7}/api/contents/${name}`);
    }
  });
});
