/**
 * The %%llm magic's answer in JupyterLab: live Markdown while it streams (the lab plugin follows
 * the answer by the id the kernel's placeholder output carries), rendered as the toolbar renders
 * it, with the kernel's plain-text fallback hidden, and replaced by the stored answer without a
 * fresh render.
 */
import { expect, test } from '@jupyterlab/galata';

import { script } from '../helpers';

const ANSWER = [
  '# Plan\n\n',
  'First, a list:\n\n',
  '- one\n',
  '- two\n\n',
  '```python\n',
  'x = 1 < 2\n',
  '```\n\n',
  ...Array.from({ length: 60 }, (_, i) => `word${i} `)
];

test.describe('The magic in JupyterLab', () => {
  test('renders live Markdown while it streams, then the stored answer', async ({ page, request }) => {
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', '%load_ext cellmage_server');
    await page.notebook.addCell('code', '%%llm --stream\nPlan it.');
    await page.notebook.runCell(0);

    await script(request, { chunks: ANSWER, interval: 0.08 });
    await page.notebook.selectCells(1);
    void page.evaluate(() => (window as any).jupyterapp.commands.execute('notebook:run-cell'));

    const cell = page.locator('.jp-Cell').nth(1);
    // A heading element, a list and highlighted code exist while the answer is still streaming
    await expect(cell.locator('.jp-cellmage-Live h1')).toHaveText('Plan', { timeout: 20000 });
    await expect(cell.locator('.jp-cellmage-Live li')).toHaveCount(2);
    await expect(cell.locator('.jp-cellmage-Live pre')).toContainText('x = 1 < 2');
    await expect(cell.locator('.jp-cellmage-Live')).toContainText('word3');
    await expect(cell).toHaveAttribute('aria-busy', 'true'); // still streaming
    const heading = await cell.locator('.jp-cellmage-Live h1').elementHandle();
    // The kernel's plain-text copy of the same answer is not shown next to it
    const stdout = cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stdout"]');
    await expect(stdout).toHaveCount(1);
    await expect(stdout).toBeHidden();

    // At the end: the stored answer, with its status line, in place of both
    const answer = cell.locator('.jp-cellmage-Answer');
    await expect(answer).toContainText('fake-fast', { timeout: 20000 });
    await expect(cell.locator('.jp-cellmage-Live')).toHaveCount(0);
    await expect(stdout).toHaveCount(0);
    await expect(answer).toHaveCount(1);
    await expect(answer).toContainText('word59');
    await expect(cell).not.toHaveAttribute('aria-busy', 'true');
    // The blocks rendered live were kept, not rendered again
    expect(await heading!.evaluate(node => node.isConnected)).toBe(true);
    const stored = await page.evaluate(() => {
      const model = (window as any).jupyterapp.shell.currentWidget.content.widgets[1].model;
      return model.outputs.toJSON();
    });
    expect(stored).toHaveLength(1);
    expect(stored[0].data['application/vnd.cellmage.answer+json'].markdown).toContain('# Plan');
  });
});
