/**
 * The %%llm magic's answer in JupyterLab: live Markdown while it streams (the lab plugin follows
 * the answer by the id the kernel's placeholder output carries), rendered as the toolbar renders
 * it, with the kernel's plain-text fallback hidden, and replaced by the stored answer without a
 * fresh render.
 */
import { expect, test } from '@jupyterlab/galata';

import { received, script, words } from '../helpers';

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

  test("the cell's control stops a %%llm answer: the kernel ends the cell and runs the next", async ({ page, request }) => {
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', '%load_ext cellmage_server');
    await page.notebook.addCell('code', '%%llm --stream\nWrite at length.');
    await page.notebook.addCell('code', 'print("after the stop")');
    await page.notebook.runCell(0);
    await script(request, { chunks: words(400), interval: 0.05 });
    await page.notebook.selectCells(1);
    void page.evaluate(() => (window as any).jupyterapp.commands.execute('notebook:run-cell'));

    const cell = page.locator('.jp-Cell').nth(1);
    await expect(cell.locator('.jp-cellmage-Live')).toContainText('word5', { timeout: 20000 });
    // The kernel's answer: the margin control is its stop control while it streams
    const control = cell.locator('.jp-cellmage-AskControl');
    await expect(control).toHaveClass(/jp-mod-running/);
    await expect(control).toHaveAttribute('aria-label', /^Stop the answer/);
    await page.screenshot({ path: test.info().outputPath('magic-streaming-stop.png') });

    await control.click();

    // The answer ends as stopped, its words so far kept; the provider's stream was closed
    const answer = cell.locator('.jp-cellmage-Answer');
    await expect(answer).toContainText('Stopped before the end of the answer.', { timeout: 10000 });
    await expect(answer).toContainText('word5');
    await expect(answer).not.toContainText('word399');
    await expect.poll(async () => (await received(request))[0].closed_by_client).toBe(true);
    // The kernel ended the cell (its count is set, the kernel idle) and the control is ✦ again
    await expect(cell.locator('.jp-InputPrompt')).toContainText('[2]');
    await expect(control).not.toHaveClass(/jp-mod-running/);
    await expect(cell).not.toHaveAttribute('aria-busy', 'true');
    // Said once: the kernel's one-line error (it stops Run All there) is not shown under the answer
    const line = cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]');
    await expect(line).toHaveCount(1);
    await expect(line).toBeHidden();
    await expect(cell.getByRole('button', { name: 'Explain this error' })).toBeHidden();
    await page.screenshot({ path: test.info().outputPath('magic-stopped.png') });
    // The kernel runs the next cell
    await page.notebook.runCell(2);
    await expect(page.locator('.jp-Cell').nth(2)).toContainText('after the stop');
    expect(await received(request)).toHaveLength(1);
  });

  test("under an answer that said how it ended only the kernel's last line is hidden, other stderr shows", async ({ page }) => {
    await page.notebook.createNew();
    const source = [
      'import sys',
      'from IPython.display import display',
      'display({"application/vnd.cellmage.answer+json": {"markdown": "Some text.\\n\\n*Stopped before the end of the answer.*", "stopped": True}, "text/plain": "Some text."}, raw=True)',
      'print("CellMage: auto-save failed: the server refused", file=sys.stderr)',
      'class AnswerFailed(Exception): pass  # the name of the magic\'s one-line ending',
      'raise AnswerFailed("the kernel line")'
    ].join('\n');
    await page.notebook.setCell(0, 'code', source);
    await page.notebook.addCell('code', source.replace('raise AnswerFailed', 'raise ValueError'));
    await page.notebook.runCell(0); // (one by one: the first one's error would stop Run All)
    await page.notebook.runCell(1);
    const [cell, other] = [page.locator('.jp-Cell').nth(0), page.locator('.jp-Cell').nth(1)];
    const saveLine = (c: typeof cell) => c.locator('.jp-OutputArea-output pre').filter({ hasText: /^CellMage: auto-save failed: the server refused\s*$/ });
    const errorOutput = (c: typeof cell) => c.locator('.jp-OutputArea-child').filter({ hasText: 'the kernel line' });
    for (const c of [cell, other]) {
      await expect(c.locator('.jp-cellmage-Answer')).toContainText('Stopped before the end of the answer.');
      await expect(saveLine(c)).toBeVisible(); // other stderr of the cell shows
      await expect(errorOutput(c)).toHaveCount(1);
    }
    await expect(errorOutput(cell)).toBeHidden();
    await expect(errorOutput(other)).toBeVisible(); // any other error shows
    await page.screenshot({ path: test.info().outputPath('kernel-ending-hidden.png') });
  });
});
