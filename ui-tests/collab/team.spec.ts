/**
 * Teams in one notebook (real-time collaboration, playwright.collab.config.js): two pages, each in
 * its own browser context (two people), on one shared notebook. The asker's page writes the
 * answer's live placeholder once; the other page follows the answer by its id and shows it live;
 * at the end both pages and the file hold the same stored answer. One answer per cell: a second
 * ask is refused (409 cell_busy) without touching the cell, and the other page's button stops the
 * answer instead. An asker that goes away mid-answer leaves the server to write the stopped answer
 * into the shared notebook.
 */
import { expect, galata, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { APIRequestContext, Browser, Page } from '@playwright/test';

import { ask, fakeProvider, PAGE_GONE, words } from '../helpers';

declare const process: { env: Record<string, string | undefined> }; // (no @types/node here)

// Set by playwright.collab.config.js (its fake provider's control URL). The default config
// (testDir ui-tests/) lists these tests too; without collaboration they do not apply.
const FAKE = process.env.CELLMAGE_UI_COLLAB_FAKE ?? '';
const ANSWER_MIME = 'application/vnd.cellmage.answer+json';
const PROMPT = 'Write at length.';
const OTHER_SOURCE = 'x = 1';
// Every expectation is bounded; the longest answer below takes 20 s.
const WAIT = { timeout: 30000 };

const { script, received } = fakeProvider(FAKE);

interface ITeam {
  /** The fixture's page: it created the notebook. */
  ada: IJupyterLabPageFixture;
  /** A second person: another browser context on the same notebook. */
  bob: IJupyterLabPageFixture;
  path: string;
  cellId: string;
}

/** A new notebook with the prompt in cell 0 and code in cell 1, opened by two people. (With a
 * kernel: opening a notebook without one asks the second person to pick one.) */
async function team(
  page: IJupyterLabPageFixture,
  browser: Browser,
  baseURL: string,
  tmpPath: string,
  waitForApplication: Parameters<typeof galata.newPage>[0]['waitForApplication']
): Promise<ITeam> {
  await page.notebook.createNew();
  await page.notebook.setCell(0, 'code', PROMPT);
  await page.notebook.addCell('code', OTHER_SOURCE);
  await page.notebook.selectCells(0);
  const path: string = await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.context.path);

  const { page: bob } = await galata.newPage({
    browser, baseURL, tmpPath, waitForApplication, mockKernels: false, mockSessions: false
  });
  await bob.evaluate(p => (window as any).jupyterapp.commands.execute('docmanager:open', { path: p }), path);
  // Bob's notebook is synced with the room: he sees what Ada typed
  await expect.poll(async () => (await view(bob, path)).sources, WAIT).toEqual([PROMPT, OTHER_SOURCE]);
  await expect.poll(async () => (await view(page, path)).ids, WAIT).toEqual((await view(bob, path)).ids);
  await bob.notebook.selectCells(0);
  return { ada: page, bob, path, cellId: (await view(page, path)).ids[0] };
}

interface IView {
  ids: string[];
  sources: string[];
  /** Cell 0's outputs as the page's notebook model has them. */
  outputs: any[];
}

/** The notebook at `path` as one page's model holds it. */
async function view(page: Page, path: string): Promise<IView> {
  return page.evaluate(p => {
    const app = (window as any).jupyterapp;
    const panel = Array.from(app.shell.widgets('main')).find((w: any) => w.context?.path === p) as any;
    const cells: any[] = panel ? Array.from(panel.content.model.cells) : [];
    return {
      ids: cells.map(c => c.id),
      sources: cells.map(c => c.sharedModel.getSource()),
      outputs: cells.length ? cells[0].outputs.toJSON() : []
    };
  }, path);
}

/** JSON with sorted keys: the same value whatever order a page's model built it in. */
function canon(value: unknown): string {
  const sorted = (v: any) => Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)));
  return JSON.stringify(value, (_, v) => (v && typeof v === 'object' && !Array.isArray(v) ? sorted(v) : v));
}

/** The notebook file as the contents API reads it. */
async function saved(request: APIRequestContext, path: string): Promise<any> {
  const response = await request.get(`/api/contents/${path.split('/').map(encodeURIComponent).join('/')}?content=1`);
  return (await response.json()).content;
}

const firstCell = (page: Page) => page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').first();

/** After the answer ended: one output, the same in both pages and (once the room saved) in the
 * file, with the other cell's source as `otherSource`. Returns that output. */
async function settledEverywhere(t: ITeam, request: APIRequestContext, otherSource = OTHER_SOURCE): Promise<any> {
  const { ada, bob, path } = t;
  for (const page of [ada, bob]) {
    await expect(firstCell(page).locator('.jp-cellmage-Live')).toHaveCount(0, WAIT);
    await expect(firstCell(page)).not.toHaveAttribute('aria-busy', 'true');
    await expect(firstCell(page)).not.toHaveClass(/jp-cellmage-streaming/);
    await expect(firstCell(page).locator('.jp-cellmage-Answer')).toHaveCount(1);
  }
  // Both models converge on one stored answer (no live placeholder left)
  await expect
    .poll(async () => {
      const [a, b] = [await view(ada, path), await view(bob, path)];
      return canon(a) === canon(b) && a.outputs.length === 1 && !a.outputs[0].data[ANSWER_MIME].answer.live;
    }, WAIT)
    .toBe(true);
  const shown = await view(ada, path);
  expect(shown.sources).toEqual([PROMPT, otherSource]);
  // ... and the file has the same, once the room saved it
  await expect
    .poll(async () => {
      const file = await saved(request, path);
      return [file.cells.map((c: any) => c.source), file.cells[0].outputs];
    }, WAIT)
    .toEqual([shown.sources, shown.outputs]);
  const text = [await firstCell(ada).textContent(), await firstCell(bob).textContent()];
  expect(text[0]).toBe(text[1]);
  return shown.outputs[0];
}

test.describe('Teams in one notebook', () => {
  test.skip(!FAKE, 'needs real-time collaboration: run with -c playwright.collab.config.js');
  let bob: IJupyterLabPageFixture | null = null;

  test.afterEach(async () => {
    // Only the context this test opened; a page that already closed is fine.
    await bob?.context().close().catch(() => undefined);
    bob = null;
  });

  test('the other page sees the answer live, then both pages and the file hold the same answer', async ({
    page, browser, baseURL, tmpPath, waitForApplication, request
  }) => {
    await script(request, { chunks: words(200), interval: 0.05 });
    const t = await team(page, browser, baseURL!, tmpPath, waitForApplication);
    bob = t.bob;
    // Bob's page records (wall clock, shared by both pages) each time the live text grows;
    // Ada's page when her cell stops answering.
    await t.bob.evaluate(() => {
      const grew: number[] = ((window as any).cellmageGrew = []);
      let length = 0;
      const cell = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')!;
      new MutationObserver(() => {
        const now = cell.querySelector('.jp-cellmage-Live')?.textContent?.length ?? 0;
        if (now > length) {
          length = now;
          grew.push(Date.now());
        }
      }).observe(cell, { childList: true, subtree: true, characterData: true });
    });
    await t.ada.evaluate(() => {
      const cell = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell')!;
      (window as any).cellmageEnded = null;
      let seen = false;
      new MutationObserver(() => {
        const streaming = cell.classList.contains('jp-cellmage-streaming');
        seen = seen || streaming;
        if (seen && !streaming && (window as any).cellmageEnded === null) {
          (window as any).cellmageEnded = Date.now();
        }
      }).observe(cell, { attributes: true, attributeFilter: ['class'] });
    });

    const asking = ask(t.ada);

    // Bob's page follows it live: his cell is busy while the text grows
    const live = firstCell(t.bob).locator('.jp-cellmage-Live');
    await expect(live).toContainText('word5', WAIT);
    await expect(firstCell(t.bob)).toHaveAttribute('aria-busy', 'true');
    await expect(firstCell(t.bob)).toHaveClass(/jp-cellmage-streaming/);
    await expect(live).toContainText('word20', WAIT);
    expect((await received(request))[0].finished).toBe(false); // the provider is still answering
    await expect(firstCell(t.ada)).toHaveClass(/jp-cellmage-streaming/);
    // Both models hold the one live placeholder meanwhile
    const during = await view(t.bob, t.path);
    expect(during.outputs).toHaveLength(1);
    expect(during.outputs[0].data[ANSWER_MIME].answer.live).toBe(true);
    expect(during.outputs).toEqual((await view(t.ada, t.path)).outputs);

    // The end: the stored answer, with its status line, in both pages and the file
    await expect(firstCell(t.ada).locator('.jp-cellmage-Answer')).toContainText('fake-fast', WAIT);
    await expect(firstCell(t.bob).locator('.jp-cellmage-Answer')).toContainText('fake-fast', WAIT);
    const output = await settledEverywhere(t, request);
    expect(await asking).toBe('ended'); // Ada's ask ended with the answer
    expect(output.data[ANSWER_MIME].markdown).toContain('word0 word1 word2');
    expect(output.data[ANSWER_MIME].markdown).toContain('word199');
    expect(output.metadata.cellmage.finish_reason).toBe('stop');
    await expect(firstCell(t.bob).locator('.jp-cellmage-Answer')).toContainText('word199');

    // Bob saw the text grow many times before Ada's answer ended
    const grew: number[] = await t.bob.evaluate(() => (window as any).cellmageGrew);
    const ended: number = await t.ada.evaluate(() => (window as any).cellmageEnded);
    expect(ended).not.toBeNull();
    expect(grew.filter(at => at < ended).length).toBeGreaterThan(5);
    expect(await received(request)).toHaveLength(1);
  });

  test("the other page's button stops the answer, for both pages", async ({
    page, browser, baseURL, tmpPath, waitForApplication, request
  }) => {
    await script(request, { chunks: words(300), interval: 0.05 });
    const t = await team(page, browser, baseURL!, tmpPath, waitForApplication);
    bob = t.bob;
    const asking = ask(t.ada);
    await expect(firstCell(t.bob).locator('.jp-cellmage-Live')).toContainText('word3', WAIT);

    // Bob's page knows the cell is answering: its button is the stop control
    await expect
      .poll(() => t.bob.evaluate(() => (window as any).jupyterapp.commands.label('cellmage:run-cell')), WAIT)
      .toBe('Stop the Answer');
    await t.bob.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell'));

    // The provider's request is closed early; both pages show the partial answer, stopped
    await expect.poll(async () => (await received(request))[0]?.closed_by_client, WAIT).toBe(true);
    expect((await received(request))[0].chunks_sent).toBeLessThan(250);
    for (const p of [t.ada, t.bob]) {
      const answer = firstCell(p).locator('.jp-cellmage-Answer');
      await expect(answer).toContainText('Stopped before the end of the answer.', WAIT);
      await expect(answer).toContainText('word0 word1 word2 word3');
    }
    const output = await settledEverywhere(t, request);
    expect(await asking).toBe('ended'); // Ada's ask ended with the answer
    expect(output.metadata.cellmage.stopped).toBe(true);
    expect(output.metadata.cellmage.finish_reason).toBe('cancelled');
    // No error output: a stop is not a failure
    expect(await firstCell(t.ada).locator('[data-mime-type="application/vnd.jupyter.stderr"]').count()).toBe(0);
    expect(await received(request)).toHaveLength(1);
  });

  test('a second ask on an answering cell is refused (409 cell_busy) and leaves the cell alone', async ({
    page, browser, baseURL, tmpPath, waitForApplication, request
  }) => {
    await script(request, { chunks: words(200), interval: 0.05 }, { chunks: ['must not be asked'] });
    const t = await team(page, browser, baseURL!, tmpPath, waitForApplication);
    bob = t.bob;
    // Bob's page has not heard from the server about the answer yet (its follow is held back):
    // the placeholder reaches it through the shared notebook, but it does not know the cell is
    // answering, so its button asks.
    let release = () => {};
    const held = new Promise<void>(resolve => (release = resolve));
    await t.bob.route(/\/cellmage\/api\/answers\/[0-9a-f]{32}\/events/, async route => {
      await held;
      await route.continue();
    });

    const asking = ask(t.ada);
    await expect(firstCell(t.ada).locator('.jp-cellmage-Live')).toContainText('word3', WAIT);
    await expect.poll(async () => (await view(t.bob, t.path)).outputs.length, WAIT).toBe(1);
    const placeholder = (await view(t.ada, t.path)).outputs;
    expect((await view(t.bob, t.path)).outputs).toEqual(placeholder);

    // A direct second ask for the cell: refused, nothing asked of the provider
    const direct = await t.bob.evaluate(
      async ({ path, cellId }) => {
        const response = await fetch('/cellmage/api/chat', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ prompt: 'again', stream: true, conversation: path, cell_id: cellId })
        });
        return { status: response.status, body: await response.json() };
      },
      { path: t.path, cellId: t.cellId }
    );
    expect(direct.status).toBe(409);
    expect(direct.body.reason).toBe('cell_busy');
    expect(direct.body.message).toContain('already answering');

    // Bob's button: it asks, the server refuses, his page says so and does not touch the cell
    expect(await t.bob.evaluate(() => (window as any).jupyterapp.commands.label('cellmage:run-cell'))).toBe('Ask the LLM');
    const refused = t.bob.waitForResponse(
      r => new URL(r.url()).pathname.endsWith('/cellmage/api/chat') && r.request().method() === 'POST',
      WAIT
    );
    await t.bob.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell'));
    expect((await refused).status()).toBe(409);
    await expect(t.bob.locator('.Toastify__toast').filter({ hasText: 'already answering' })).toBeVisible(WAIT);
    expect((await view(t.bob, t.path)).outputs).toEqual(placeholder);
    expect((await view(t.ada, t.path)).outputs).toEqual(placeholder);
    await expect(firstCell(t.bob).locator('[data-mime-type="application/vnd.jupyter.stderr"]')).toHaveCount(0);
    // ... and his cell still shows the running answer as busy
    await expect(firstCell(t.bob)).toHaveAttribute('aria-busy', 'true');
    expect(await received(request)).toHaveLength(1);

    // Once Bob's page hears from the server, it follows the answer to its end, as Ada's does
    release();
    await expect(firstCell(t.bob).locator('.jp-cellmage-Live')).toContainText('word3', WAIT);
    await expect(firstCell(t.ada).locator('.jp-cellmage-Answer')).toContainText('fake-fast', WAIT);
    const output = await settledEverywhere(t, request);
    expect(await asking).toBe('ended'); // Ada's ask ended with the answer
    expect(output.data[ANSWER_MIME].markdown).toContain('word199');
    expect(output.metadata.cellmage.stopped).toBeUndefined();
    expect(await received(request)).toHaveLength(1);
  });

  test('when the asking page closes mid-answer, the server writes the stopped answer for everyone', async ({
    page, browser, baseURL, tmpPath, waitForApplication, request
  }) => {
    await script(request, { chunks: words(300), interval: 0.05 });
    const t = await team(page, browser, baseURL!, tmpPath, waitForApplication);
    bob = t.bob;
    // Bob asks this time; Ada watches
    const asking = ask(t.bob);
    const cell = firstCell(t.ada);
    await expect(cell.locator('.jp-cellmage-Live')).toContainText('word5', WAIT);
    await expect(cell).toHaveAttribute('aria-busy', 'true');

    // Bob's page goes away mid-answer, its stream with it: the server stops the provider ...
    await t.bob.context().close();
    expect(await asking).toMatch(PAGE_GONE); // the page that asked went away before the answer ended
    await expect.poll(async () => (await received(request))[0].closed_by_client, WAIT).toBe(true);
    // ... and writes the answer into the shared notebook: Ada's page shows it, stopped, abandoned
    const answer = cell.locator('.jp-cellmage-Answer');
    await expect(answer).toContainText('Stopped before the end of the answer.', WAIT);
    await expect(answer).toContainText('The page or kernel that asked for this answer closed before the answer ended.');
    await expect(answer).toContainText('word0 word1 word2 word3 word4 word5');
    await expect(cell.locator('.jp-cellmage-Live')).toHaveCount(0);
    await expect(cell).not.toHaveAttribute('aria-busy', 'true');
    await expect(cell).not.toHaveClass(/jp-cellmage-streaming/);
    const shown = await view(t.ada, t.path);
    expect(shown.outputs).toHaveLength(1);
    expect(shown.outputs[0].data[ANSWER_MIME].answer.live).toBeUndefined();

    // ... and the file has it, without anyone saving
    await expect
      .poll(async () => {
        const output = (await saved(request, t.path)).cells[0].outputs[0];
        const meta = output.metadata.cellmage;
        return [meta?.finish_reason, meta?.stopped, output.data[ANSWER_MIME].answer?.live];
      }, WAIT)
      .toEqual(['cancelled', true, undefined]);
    const file = await saved(request, t.path);
    expect(file.cells[0].outputs).toEqual(shown.outputs);
    expect(file.cells[0].outputs[0].metadata.cellmage.error.code).toBe('abandoned');
  });

  test('edits elsewhere during the answer are kept, in both pages and the file', async ({
    page, browser, baseURL, tmpPath, waitForApplication, request
  }) => {
    // 200 words, then the provider goes silent with the answer open: it runs until Ada stops it,
    // however slow the machine (a paced answer could end before the edit has gone round)
    await script(request, { chunks: words(400), interval: 0.01, silence_after: 200, hold_seconds: 90 });
    const t = await team(page, browser, baseURL!, tmpPath, waitForApplication);
    bob = t.bob;
    const asking = ask(t.ada);
    await expect(firstCell(t.bob).locator('.jp-cellmage-Live')).toContainText('word199', WAIT);

    // Bob types into the other cell while the answer runs; Ada's page gets the edit meanwhile
    const edited = 'y = 2  # edited';
    expect(await t.bob.notebook.setCell(1, 'code', edited)).toBe(true);
    await expect.poll(async () => (await view(t.ada, t.path)).sources, WAIT).toEqual([PROMPT, edited]);
    expect((await received(request))[0].finished).toBe(false); // all that while the answer ran
    await expect(firstCell(t.bob).locator('.jp-cellmage-Live')).toHaveCount(1);

    // Ada stops it: the stored answer and the edit, in both pages and the file
    await t.ada.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell'));
    expect(await asking).toBe('ended');
    // One stored answer: outputs never duplicate
    await expect(firstCell(t.ada).locator('.jp-cellmage-Answer')).toHaveCount(1, WAIT);
    await expect(firstCell(t.ada).locator('.jp-cellmage-Answer')).toContainText('Stopped before the end of the answer.', WAIT);
    const output = await settledEverywhere(t, request, edited);
    expect(output.data[ANSWER_MIME].markdown).toContain('word199');
    expect(output.metadata.cellmage.stopped).toBe(true);
  });
});
