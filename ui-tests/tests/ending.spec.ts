/**
 * Both clients end an answer alike: stopped in the middle of a code block, the Stopped marker and
 * the status line go below the code block, not inside it; and a finished answer ends with the same
 * status line in the toolbar's output and in the magic's.
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';

import { script } from '../helpers';

const CODE = ['Here is the script:\n\n', '```python\n', ...Array.from({ length: 200 }, (_, i) => `print(${i} < ${i + 1})\n`)];

const output = (page: IJupyterLabPageFixture, index: number) =>
  page.locator('.jp-Cell').nth(index).locator('.jp-cellmage-Answer').first();

/** The marker and status line are outside every code block, and the code block holds the code. */
async function expectEndingOutsideCode(page: IJupyterLabPageFixture, index: number) {
  const answer = output(page, index);
  await expect(answer).toContainText('Stopped before the end of the answer.', { timeout: 15000 });
  await expect(answer.locator('pre')).toContainText('print(0 < 1)');
  await expect(answer.locator('pre')).not.toContainText('Stopped');
  await expect(answer.locator('pre')).not.toContainText('fake-fast');
  await expect(answer.locator('p').last()).toContainText('fake-fast');
}

test.describe('Endings', () => {
  test('stopped inside a code block, both clients put the marker below it', async ({ page, request }) => {
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', 'Write a script.');
    await page.notebook.addCell('code', '%load_ext cellmage_server');
    await page.notebook.addCell('code', '%%llm --stream\nWrite a script.');

    await script(request, { chunks: CODE, interval: 0.05 });
    await page.notebook.selectCells(0);
    void page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell')); // resolves at the end
    await expect(page.locator('.jp-Cell').first()).toContainText('print(3 < 4)', { timeout: 20000 });
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell')); // stop
    await expectEndingOutsideCode(page, 0);

    await page.notebook.runCell(1);
    await script(request, { chunks: CODE, interval: 0.05 });
    await page.notebook.selectCells(2);
    void page.evaluate(() => (window as any).jupyterapp.commands.execute('notebook:run-cell'));
    await expect(page.locator('.jp-Cell').nth(2)).toContainText('print(3 < 4)', { timeout: 20000 });
    const kernel = await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.sessionContext.session.kernel.id);
    await request.post(`/api/kernels/${kernel}/interrupt`); // the stop button
    await expectEndingOutsideCode(page, 2);
    // The magic's cell failed, in one line
    await expect(page.locator('.jp-Cell').nth(2).locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).toContainText(
      'CellMage: the answer was stopped'
    );
  });

  test('a finished answer ends with the same status line in both clients', async ({ page, request }) => {
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', 'Say hi.');
    await page.notebook.addCell('code', '%load_ext cellmage_server');
    await page.notebook.addCell('code', '%%llm\nSay hi.');
    await script(request, { chunks: ['Hi ', 'there.'] }, { chunks: ['Hi ', 'there.'] });
    await page.notebook.selectCells(0);
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell'));
    await expect(output(page, 0)).toContainText('Hi there.');
    await page.notebook.runCell(1);
    await page.notebook.runCell(2);
    await expect(output(page, 2)).toContainText('Hi there.');

    const status = /^fake-fast · 7 → 3 tokens · \d+\.\d s$/;
    for (const index of [0, 2]) {
      await expect(output(page, index).locator('p').last()).toHaveText(status);
    }
  });
});
