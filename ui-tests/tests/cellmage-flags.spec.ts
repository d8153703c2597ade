import { expect, test } from '@jupyterlab/galata';

import { received, script } from '../helpers';

// The toolbar reads a first %%llm line with the magic's grammar (flags.ts, flags.py), CellMage's
// --no-history, --no-rollback and --param included; the fake provider's log shows what went out.

test("the toolbar asks with CellMage's flags: --no-history is seen, not kept; --param reaches the provider", async ({
  page,
  request
}) => {
  await script(request, { chunks: ['A prompt is what you ask.'] }, { chunks: ['A token is a piece of a word.'] }, { chunks: ['Go on, then.'] });
  await page.notebook.createNew();
  await page.notebook.setCell(0, 'code', 'What is a prompt?');
  await page.notebook.addCell('code', '%%llm --no-history --param top_p 0.5 --param stop END\nAn aside: what is a token?');
  await page.notebook.addCell('code', 'Go on.');
  await page.notebook.addCell('code', '%%llm --param api_base http://127.0.0.1:9/v1\nRe-route me.');
  const path = await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.context.path);
  const run = async (index: number, text: string) => {
    await page.notebook.selectCells(index);
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell'));
    await expect(page.locator('.jp-Cell').nth(index).locator('.jp-OutputArea-output').first()).toContainText(text);
  };

  await run(0, 'A prompt is what you ask.');
  await run(1, 'A token is a piece of a word.');
  await run(2, 'Go on, then.');
  await run(3, 'api_base is not a parameter you may set');

  const [, aside, next] = await received(request);
  expect(aside.body.top_p).toBe(0.5);
  expect(aside.body.stop).toBe('END');
  expect(aside.body.messages.map((m: any) => m.content)).toEqual([
    'What is a prompt?',
    'A prompt is what you ask.',
    'An aside: what is a token?'
  ]);
  // The aside stayed out of the conversation: the next cell does not see it
  expect(next.body.messages.map((m: any) => m.content)).toEqual(['What is a prompt?', 'A prompt is what you ask.', 'Go on.']);
  expect((await received(request)).length).toBe(3); // the re-routing cell never reached the provider
  const turns = (await (await request.get(`/cellmage/api/conversations/${encodeURIComponent(path)}`)).json()).turns;
  expect(turns.map((t: any) => t.prompt)).toEqual(['What is a prompt?', 'Go on.']);
  await page.screenshot({ path: test.info().outputPath('cellmage-flags.png') });
});
