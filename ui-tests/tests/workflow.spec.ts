/**
 * The first minutes of a user: the ✦ control is visible and usable on any code cell whatever its
 * text (JupyterLab hides the cell toolbar on a long first line), the output says it waits for the
 * model from the moment of asking, with the Stop control, prompt cells survive every run command
 * in notebook order with or without a kernel, and a growing answer stays in view until the person
 * scrolls.
 */
import { expect, test } from '@jupyterlab/galata';

import { ANSWER_MIME, box, cells, code, control, FAKE, markdown, onTop, openNotebook, received, saved, script, words } from '../support';

const LONG_FIRST_LINE =
  'Explain, in plain words and with one short example, what the energy of a quantum state means and why it is quantised';
const PROMPT = { cellmage: { prompt: true } };

test.describe('The ask control', () => {
  test('shows on a prompt whose first line runs under the cell toolbar, stops it, and only on code cells', async ({
    page,
    request,
    tmpPath
  }) => {
    await script(request, { chunks: words(200), interval: 0.05 });
    const path = await openNotebook(page, request, tmpPath, [
      markdown('# Notes'),
      code(LONG_FIRST_LINE),
      code('x = 1'),
      { cell_type: 'raw', source: 'raw', metadata: {} }
    ], false);
    const prompt = cells(page).nth(1);
    await page.notebook.selectCells(1);

    // JupyterLab hides the cell toolbar here (its first line runs under it); the control is there
    await expect(prompt.locator('.jp-cell-toolbar [data-command="cellmage:run-cell"]')).toBeHidden();
    await expect(control(prompt)).toBeVisible();
    expect(await onTop(control(prompt))).toBe(true);
    const [button, editor] = [await box(control(prompt)), await box(prompt.locator('.jp-InputArea-editor'))];
    expect(button!.right).toBeLessThanOrEqual(editor!.left); // in the margin: no text runs under it
    // Markdown and raw cells have no control (no outputs); a code cell not selected shows it under the pointer
    await expect(control(cells(page).nth(0))).toHaveCount(0);
    await expect(control(cells(page).nth(3))).toHaveCount(0);
    await expect(control(cells(page).nth(2))).toBeHidden();
    await cells(page).nth(2).hover();
    await expect(control(cells(page).nth(2))).toBeVisible();

    await control(prompt).click();

    await expect(prompt.locator('.jp-cellmage-Answer')).toContainText('word3', { timeout: 20000 });
    // While it streams: the bar along the cell's top, and the control is the stop control, on top
    await expect(control(prompt)).toHaveClass(/jp-mod-running/);
    await prompt.locator('.jp-cellmage-Answer').hover(); // (the pointer elsewhere: it stays shown)
    expect(await onTop(control(prompt))).toBe(true);
    const bar = await prompt.evaluate(cell => {
      const style = getComputedStyle(cell, '::before');
      return { height: style.height, shown: style.content !== 'none', background: style.backgroundColor };
    });
    expect(bar).toEqual({ height: '2px', shown: true, background: expect.not.stringMatching(/rgba\(0, 0, 0, 0\)/) });
    await page.screenshot({ path: test.info().outputPath('streaming-long-first-line.png') });

    await control(prompt).click();

    await expect(prompt.locator('.jp-cellmage-Answer')).toContainText('Stopped before the end of the answer.');
    await expect.poll(async () => (await received(request))[0].closed_by_client).toBe(true);
    await expect(control(prompt)).not.toHaveClass(/jp-mod-running/);
    await page.screenshot({ path: test.info().outputPath('stopped.png') });
    // Asked from its control, the cell is a prompt from now on, in the file too
    await page.notebook.save();
    expect((await saved(request, path)).cells[1].metadata.cellmage).toEqual({ prompt: true });
  });

  test('from the moment of asking, the output says it waits for the model, with the seconds and Stop', async ({
    page,
    request,
    tmpPath
  }) => {
    await script(request, { chunks: words(100), first_delay: 3, interval: 0.05 });
    await openNotebook(page, request, tmpPath, [code('Think for a while.')], false);
    const cell = cells(page).first();

    await control(cell).click();

    const progress = cell.locator('.jp-cellmage-Progress');
    await expect(progress).toContainText('waiting for fake-fast… 0 s');
    await expect(progress).toContainText('waiting for fake-fast… 1 s', { timeout: 5000 }); // the seconds go on
    const stop = progress.getByRole('button', { name: 'Stop' });
    expect(await onTop(stop)).toBe(true);
    await page.screenshot({ path: test.info().outputPath('waiting.png') });
    // Then the first words replace it, and Stop stays under the growing text
    await expect(cell.locator('.jp-cellmage-Answer')).toContainText('word2', { timeout: 20000 });
    await expect(progress).toContainText('fake-fast is writing…');

    await stop.click();

    await expect(cell.locator('.jp-cellmage-Answer')).toContainText('Stopped before the end of the answer.');
    await expect(progress).toHaveCount(0);
    await expect.poll(async () => (await received(request))[0].closed_by_client).toBe(true);
  });
});

test.describe('Prompt cells and the run commands', () => {
  test('Run All answers prompt cells as prompts, in notebook order, and the kernel runs the rest', async ({
    page,
    request,
    tmpPath
  }) => {
    await script(request, { chunks: ['Forty', '-one.'], interval: 0.3 }, { chunks: ['Then ', 'forty-two.'], interval: 0.3 });
    await openNotebook(page, request, tmpPath, [
      code('x = 41'),
      code('What is x?', 'first-prompt', PROMPT),
      code('print(x + 1)'),
      code('%%llm --model fake-other\nAnd then?', 'second-prompt', PROMPT),
      code('y = "after"; print(y)')
    ]);
    // When each cell's output first changes, from inside the page
    await page.evaluate(() => {
      const notebook = (window as any).jupyterapp.shell.currentWidget.content;
      const seen: Record<number, number> = ((window as any).cellmageFirstOutput = {});
      notebook.widgets.forEach((cell: any, i: number) =>
        cell.model.outputs?.changed.connect(() => {
          const stored = cell.model.outputs.toJSON().some((o: any) => o.data?.['application/vnd.cellmage.answer+json']?.markdown);
          if ((cell.model.outputs.length && i % 2 === 0) || stored) {
            seen[i] = seen[i] ?? performance.now();
          }
        })
      );
    });

    await page.evaluate(() => (window as any).jupyterapp.commands.execute('notebook:run-all-cells'));

    await expect(cells(page).nth(4)).toContainText('after', { timeout: 30000 });
    await expect(cells(page).nth(1).locator('.jp-cellmage-Answer')).toContainText('Forty-one.');
    await expect(cells(page).nth(3).locator('.jp-cellmage-Answer')).toContainText('Then forty-two.');
    await expect(cells(page).nth(2)).toContainText('42');
    await expect(page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).toHaveCount(0);
    const asked = await received(request);
    expect(asked.map(r => r.body.model)).toEqual(['fake-fast', 'fake-other']);
    // In order: the second prompt saw the first one's answer, and each cell ran after the one above
    expect(asked[1].body.messages.map((m: any) => m.content)).toEqual(['What is x?', 'Forty-one.', 'And then?']);
    const first: Record<number, number> = await page.evaluate(() => (window as any).cellmageFirstOutput);
    expect(first[1]).toBeLessThan(first[2]);
    expect(first[2]).toBeLessThan(first[3]);
    expect(first[3]).toBeLessThan(first[4]);
    // The kernel ran the code cells only; prompt cells have no execution count
    const counts = await page.evaluate(() =>
      (window as any).jupyterapp.shell.currentWidget.content.widgets.map((c: any) => c.model.executionCount)
    );
    expect(counts).toEqual([1, null, 2, null, 3]);
    await page.screenshot({ path: test.info().outputPath('run-all-prompt-cells.png') });

    // Shift+Enter on a prompt cell asks again
    await script(request, { chunks: ['Again.'] });
    await page.notebook.selectCells(1);
    await page.keyboard.press('Shift+Enter');
    await expect(cells(page).nth(1).locator('.jp-cellmage-Answer')).toContainText('Again.');
    expect(await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.content.widgets[1].model.executionCount)).toBeNull();
  });

  test('Restart & Run All answers a prompt cell between code cells, with the restarted kernel', async ({ page, request, tmpPath }) => {
    await script(request, { chunks: ['Once.'] }, { chunks: ['Twice.'] });
    const runs = 'runs = globals().get("runs", 0) + 1';
    await openNotebook(page, request, tmpPath, [code(runs), code('Say once.', 'p', PROMPT), code('print("runs", runs)')]);
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('notebook:run-all-cells'));
    await expect(cells(page).nth(2)).toContainText('runs 1', { timeout: 30000 });
    await expect(cells(page).nth(1).locator('.jp-cellmage-Answer')).toContainText('Once.');
    // The old kernel counts a second run; then no output is left from before the restart
    await page.notebook.runCell(0);
    await expect(cells(page).nth(0).locator('.jp-InputPrompt')).toContainText('[3]');
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('notebook:clear-all-cell-outputs'));
    await expect(page.locator('.jp-OutputArea-output')).toHaveCount(0);

    // JupyterLab's own Restart & Run All, from its command and its dialog. (galata's tracker of the
    // kernels a test starts answers every POST under /api/kernels with 201, which JupyterLab's
    // restart refuses as "Invalid response: 201 Created": the restart goes to the server itself.)
    await page.route(/\/api\/kernels\/[^/?]+\/restart/, route => route.continue());
    const kernel = await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.sessionContext.session.kernel.id);
    void page.evaluate(() => (window as any).jupyterapp.commands.execute('notebook:restart-run-all'));
    await page.locator('.jp-Dialog .jp-mod-accept').click();

    await expect(cells(page).nth(1).locator('.jp-cellmage-Answer')).toContainText('Twice.', { timeout: 30000 });
    await expect(cells(page).nth(2)).toContainText('runs 1', { timeout: 30000 }); // a fresh kernel: not 'runs 3'
    const counts = await page.evaluate(() =>
      (window as any).jupyterapp.shell.currentWidget.content.widgets.map((c: any) => c.model.executionCount)
    );
    expect(counts).toEqual([1, null, 2]); // the kernel started afresh and ran the code cells only
    // The same kernel, restarted (not a new one), and no error anywhere
    expect(await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.sessionContext.session.kernel.id)).toBe(kernel);
    await expect(page.locator('.jp-Dialog')).toHaveCount(0);
    await expect(page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).toHaveCount(0);
    expect(await received(request)).toHaveLength(2);
  });

  test('without a kernel, Run All answers the prompt cells and a %%llm cell, and asks for no kernel', async ({
    page,
    request,
    tmpPath
  }) => {
    await script(request, { chunks: ['One.'] }, { chunks: ['Two.'] });
    const path = await openNotebook(page, request, tmpPath, [code('First?', 'a', PROMPT), code('%%llm\nSecond?', 'b')], false);

    await page.evaluate(() => (window as any).jupyterapp.commands.execute('notebook:run-all-cells'));

    await expect(cells(page).nth(1).locator('.jp-cellmage-Answer')).toContainText('Two.', { timeout: 20000 });
    await expect(cells(page).nth(0).locator('.jp-cellmage-Answer')).toContainText('One.');
    await expect(page.locator('.jp-Dialog')).toHaveCount(0); // no "Select Kernel"
    const sessions = await (await request.get('/api/sessions')).json();
    expect(sessions.filter((s: any) => s.path === path && s.kernel)).toEqual([]);
  });

  test('a prompt that fails stops Run All there, as an error in a code cell does', async ({ page, request, tmpPath }) => {
    await script(request, { chunks: words(5), interval: 0.05, drop_after: 2 }, { chunks: ['must not be asked'] });
    await openNotebook(page, request, tmpPath, [code('Break.', 'a', PROMPT), code('ran = True'), code('Next?', 'b', PROMPT)]);

    await page.evaluate(() => (window as any).jupyterapp.commands.execute('notebook:run-all-cells'));

    await expect(cells(page).nth(0).locator('.jp-cellmage-Answer')).toContainText("The provider's connection broke mid-answer.", {
      timeout: 20000
    });
    await expect.poll(() => page.evaluate(() => document.querySelectorAll('.jp-cellmage-queued').length)).toBe(0);
    expect(await received(request)).toHaveLength(1);
    const counts = await page.evaluate(() =>
      (window as any).jupyterapp.shell.currentWidget.content.widgets.map((c: any) => c.model.executionCount)
    );
    expect(counts).toEqual([null, null, null]);
  });

  test('Run This Cell as Code makes a prompt cell run in the kernel again', async ({ page, request, tmpPath }) => {
    await script(request);
    await openNotebook(page, request, tmpPath, [code('print("code again")', 'a', PROMPT)]);
    await page.notebook.selectCells(0);
    await expect(cells(page).first()).toHaveClass(/jp-cellmage-PromptCell/);

    await page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-as-code'));
    await page.notebook.runCell(0);

    await expect(cells(page).first()).toContainText('code again');
    await expect(cells(page).first()).not.toHaveClass(/jp-cellmage-PromptCell/);
    expect(await received(request)).toHaveLength(0);
  });
});

test.describe('The answer follows the eye', () => {
  test('the growing answer stays in view until the person scrolls, then the page never moves', async ({ page, request, tmpPath }) => {
    const lines = Array.from({ length: 120 }, (_, i) => `line${i}\n\n`);
    await script(request, { chunks: lines, interval: 0.06 });
    const filler = Array.from({ length: 12 }, (_, i) => code(`filler_${i} = ${i}\n# a second line\n# a third line`));
    await openNotebook(page, request, tmpPath, [...filler, code('Write many lines.', 'ask')], false);
    await page.notebook.selectCells(12); // (JupyterLab scrolls it into view)
    const ask = cells(page).nth(12);
    await ask.scrollIntoViewIfNeeded();
    const scroller = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer');
    const inView = async (text: string) => {
      const [line, view] = [await box(ask.locator('p', { hasText: new RegExp(`^${text}$`) })), await box(scroller)];
      return line !== null && view !== null && line.bottom <= view.bottom && line.top >= view.top;
    };

    await control(ask).click();

    // The end of the answer is kept in view as it grows
    await expect(ask.locator('p', { hasText: /^line30$/ })).toHaveCount(1, { timeout: 20000 });
    await expect.poll(() => inView('line30')).toBe(true);
    await expect(ask.locator('p', { hasText: /^line45$/ })).toHaveCount(1, { timeout: 20000 });
    await expect.poll(() => inView('line45')).toBe(true);
    await page.screenshot({ path: test.info().outputPath('follows-the-eye.png') });

    // The person scrolls up: from then on the page stays where they put it
    // (where the page was when the wheel turned, read in the page: the answer grows meanwhile)
    await scroller.evaluate(e =>
      e.addEventListener('wheel', () => ((window as any).cellmageAtWheel ??= e.scrollTop), { capture: true, once: true })
    );
    await scroller.hover();
    await page.mouse.wheel(0, -400);
    let last = -1;
    await expect // until the wheel's scrolling has come to rest
      .poll(async () => {
        const now = await scroller.evaluate(e => e.scrollTop);
        const still = now === last;
        last = now;
        return still;
      })
      .toBe(true);
    const put = last;
    const before: number = await page.evaluate(() => (window as any).cellmageAtWheel);
    expect(put).toBeLessThan(before);
    await expect(ask.locator('p', { hasText: /^line80$/ })).toHaveCount(1, { timeout: 20000 });
    expect(await scroller.evaluate(e => e.scrollTop)).toBe(put);
    expect(await inView('line80')).toBe(false);
  });
});
