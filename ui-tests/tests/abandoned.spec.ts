/**
 * An answer whose page closed mid-answer is not left looking finished: when the notebook opens
 * again, the cell shows the text that came, marked like a stopped answer, and the file keeps that.
 * (Without real-time collaboration: the page that opens the notebook writes it from the server's
 * record. With it, the server writes it itself: collab/*.spec.ts.)
 */
import { expect, test } from '@jupyterlab/galata';

import { ask, labStarted, openNotebook, PAGE_GONE, received, script, words } from '../helpers';

test('an answer abandoned by its page is marked incomplete when the notebook opens again', async ({ page, request }) => {
  await script(request, { chunks: words(300), interval: 0.05 });
  await page.notebook.createNew();
  await page.notebook.setCell(0, 'code', 'Write at length.');
  await page.notebook.selectCells(0);
  // (It resolves at the answer's end; here the page goes away first.)
  const asking = ask(page);
  await expect(page.locator('.jp-Cell').first()).toContainText('word5', { timeout: 20000 });
  const path: string = await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.context.path);
  // Saved mid-answer: the file holds the live placeholder
  await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.context.save());
  const midway = await (await request.get(`/api/contents/${path}?content=1`)).json();
  expect(midway.content.cells[0].outputs[0].data['application/vnd.cellmage.answer+json'].answer.live).toBe(true);

  // The page goes away mid-answer (its stream with it): the server stops the provider
  await page.reload({ waitForIsReady: false });
  expect(await asking).toMatch(PAGE_GONE); // the page that asked went away before the answer ended
  await expect.poll(async () => (await received(request))[0].closed_by_client).toBe(true);
  await labStarted(page);
  await openNotebook(page, path);

  // Opened again: the text that came, the Stopped marker, what happened, the status line
  const answer = page.locator('.jp-Cell').first().locator('.jp-cellmage-Answer');
  await expect(answer).toContainText('Stopped before the end of the answer.', { timeout: 20000 });
  await expect(answer).toContainText('The page or kernel that asked for this answer closed before the answer ended.');
  await expect(answer).toContainText('word0 word1 word2 word3 word4 word5');
  await expect(page.locator('.jp-Cell').first()).not.toHaveAttribute('aria-busy', 'true');

  // And so does the file, once saved
  await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.context.save());
  await expect
    .poll(async () => {
      const saved = await (await request.get(`/api/contents/${path}?content=1`)).json();
      const output = saved.content.cells[0].outputs[0];
      return [output.metadata.cellmage?.finish_reason, output.metadata.cellmage?.stopped, output.data['application/vnd.cellmage.answer+json'].answer?.live];
    })
    .toEqual(['cancelled', true, undefined]);
});
