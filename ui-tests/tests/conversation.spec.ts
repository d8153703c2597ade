import { expect, test } from '@jupyterlab/galata';

import { received, script } from '../helpers';

test('a notebook is one conversation: the second cell sees the first; show and clear it', async ({ page, request }) => {
  await script(request, { chunks: ['Paris.'] }, { chunks: ['About 2.1 million.'] });
  await page.notebook.createNew();
  await page.notebook.setCell(0, 'code', 'What is the capital of France?');
  await page.notebook.addCell('code', 'How many people live there?');
  const path = await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.context.path);
  const run = async (index: number, text: string) => {
    await page.notebook.selectCells(index);
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell'));
    await expect(page.locator('.jp-Cell').nth(index).locator('.jp-OutputArea-output').first()).toContainText(text);
  };

  await run(0, 'Paris.');
  await run(1, 'About 2.1 million.');

  const second = (await received(request))[1].body.messages.map((m: any) => [m.role, m.content]);
  expect(second).toEqual([
    ['user', 'What is the capital of France?'],
    ['assistant', 'Paris.'],
    ['user', 'How many people live there?']
  ]);

  void page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:show-conversation'));
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toContainText('What is the capital of France?');
  await expect(dialog).toContainText('About 2.1 million.');
  // Rendered as (safe) Markdown: a heading per turn, the prompt quoted
  await expect(dialog.locator('.jp-cellmage-Conversation h4')).toHaveCount(2);
  await expect(dialog.locator('.jp-cellmage-Conversation blockquote').first()).toContainText('What is the capital of France?');
  await page.screenshot({ path: test.info().outputPath('conversation.png') });
  await dialog.getByRole('button', { name: 'Ok' }).click();

  void page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:clear-conversation'));
  await page.locator('.jp-Dialog').getByRole('button', { name: 'Clear' }).click();
  await expect
    .poll(async () => (await (await request.get(`/cellmage/api/conversations/${encodeURIComponent(path)}`)).json()).turns.length)
    .toBe(0);
});
