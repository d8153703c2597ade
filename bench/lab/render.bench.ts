/**
 * The lab plugin's rendering, measured in Chromium. Results go to the directory named by
 * CELLMAGE_BENCH_OUT (plain.json, markdown.json), which bench/lab_bench.py reads.
 *
 * - Plain text: a 4,000- and an 8,000-chunk answer streamed into a new notebook's cell: output
 *   renders per second (frames that show a change of the output), the longest main-thread task,
 *   and main-thread scripting.
 * - Markdown: a Markdown-heavy answer of 30 and of 60 KB (content.ts), paced as a model streams it,
 *   into cell 69 of a 70-cell notebook: the longest main-thread task while it streams and at its
 *   end (wall time as the longtask API sees it, and thread time from a trace: trace.ts),
 *   main-thread scripting, and how long a delta takes from its arrival in the page to its pixels
 *   (probe.ts).
 */
import { expect, galata, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { APIRequestContext, CDPSession, Page } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

import { chunked, markdownAnswer, MARKER, notebook } from './content';
import { installProbe } from './probe';
import { CATEGORIES, longestTasks, START } from './trace';

// The fake provider runs inside the Jupyter server (ui-tests/jupyter_server_test_config.py).
const FAKE = `http://127.0.0.1:${process.env.CELLMAGE_BENCH_FAKE_PORT || 8896}/_fake`;
const REPEATS = Number(process.env.CELLMAGE_BENCH_REPEATS || 3);
const OUT = process.env.CELLMAGE_BENCH_OUT || '.';

async function script(request: APIRequestContext, ...scripts: Record<string, unknown>[]) {
  await request.post(`${FAKE}/reset`);
  await request.post(`${FAKE}/script`, { data: scripts });
}

/** Seconds of main-thread script execution so far (CDP's ScriptDuration). */
async function scripting(cdp: CDPSession): Promise<number> {
  return (await cdp.send('Performance.getMetrics')).metrics.find(m => m.name === 'ScriptDuration')!.value;
}

/** The Page behind galata's fixture (a proxy that its types do not describe). */
function rawPage(page: IJupyterLabPageFixture): Page {
  return (page as IJupyterLabPageFixture & { page: Page }).page;
}

async function measuredPage(page: IJupyterLabPageFixture): Promise<CDPSession> {
  const cdp = await page.context().newCDPSession(rawPage(page));
  await cdp.send('Performance.enable');
  return cdp;
}

test('streaming renders', async ({ page, request }) => {
  const cdp = await measuredPage(page);
  const results: Record<string, unknown>[] = [];

  await page.notebook.createNew();
  // Unmeasured: the page's first answer loads the renderer's code and warms the JIT.
  await script(request, { chunks: Array(200).fill('abc '), interval: 0.001 });
  await page.notebook.setCell(0, 'code', 'Warm up');
  await page.notebook.selectCells(0);
  await page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell'));
  for (let r = 0; r < REPEATS; r++) {
    for (const chunks of [4000, 8000]) {
      await script(request, { chunks: Array(chunks).fill('abc '), interval: 0.001 });
      await page.notebook.setCell(0, 'code', `Answer ${chunks}`);
      await page.notebook.selectCells(0);
      await page.evaluate(() => {
        const w = window as any;
        w.benchRenders = 0;
        w.benchLongest = 0;
        w.benchObserver?.disconnect();
        w.benchObserver = new PerformanceObserver(list => {
          for (const e of list.getEntries()) {
            w.benchLongest = Math.max(w.benchLongest, e.duration);
          }
        });
        w.benchObserver.observe({ type: 'longtask' });
        // A render is a frame that shows a change of the cell's output DOM (whether the plugin
        // renders from the output model or from the live answer beside it).
        let pending = false;
        w.benchDom?.disconnect();
        w.benchDom = new MutationObserver(() => {
          if (!pending) {
            pending = true;
            requestAnimationFrame(() => {
              pending = false;
              w.benchRenders++;
            });
          }
        });
        const cell = w.jupyterapp.shell.currentWidget.content.activeCell;
        w.benchDom.observe(cell.outputArea.node, { childList: true, subtree: true, characterData: true });
      });
      const before = await scripting(cdp);
      const started = Date.now();
      await page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell'));
      await expect(page.locator('.jp-Cell').first()).not.toHaveClass(/jp-cellmage-streaming/, { timeout: 120000 });
      const seconds = (Date.now() - started) / 1000;
      const scriptingMs = ((await scripting(cdp)) - before) * 1000;
      const measured = await page.evaluate(() => {
        const w = window as any;
        return { renders: w.benchRenders, longest: w.benchLongest };
      });
      const text = await page.locator('.jp-Cell').first().locator('.jp-OutputArea-output').first().innerText();
      expect(text.length).toBeGreaterThan(chunks * 3);
      results.push({ chunks, seconds, rendersPerSecond: measured.renders / seconds, longestTaskMs: measured.longest, scriptingMs });
    }
  }
  fs.writeFileSync(path.join(OUT, 'plain.json'), JSON.stringify(results, null, 1));
});

// --- Markdown in a long notebook -------------------------------------------------------------------

const CELLS = 70;
const ASKED = 68; // 0-based: cell 69 of 70, one cell below it
const SIZES = [30000, 60000];
const CHUNK_BYTES = 100;
const INTERVAL = 0.03; // s between chunks: ~3 KB/s, a fast model; 60 KB in ~20 s
const QUIET_MS = 1000; // the final render is done when the output has not changed for this long
const PROFILE = process.env.CELLMAGE_BENCH_PROFILE === '1';

// How the table of contents (JupyterLab's defaults: outputs' headings included) gets an answer's
// headings: from this extension as the answer streams (src/toc.ts), or JupyterLab's own way, from
// the stored answer's HTML at its end (the setting off, as before src/toc.ts). Both in one run.
const HEADINGS = (process.env.CELLMAGE_BENCH_HEADINGS || 'jupyterlab,answer').split(',');

for (const headings of HEADINGS) {
test.describe(`Markdown, headings: ${headings}`, () => {
  test.use({
    mockSettings: {
      ...galata.DEFAULT_SETTINGS,
      // Autosave would serialize the 70-cell notebook at a random moment of some run: not the plugin.
      '@jupyterlab/docmanager-extension:plugin': { autosave: false },
      'cellmage-server:toc': { answerHeadings: headings === 'answer' }
    }
  });

  test('a Markdown answer into cell 69 of 70', async ({ page, request, tmpPath }) => {
    test.setTimeout(REPEATS * 120000 + 180000);
    const cdp = await measuredPage(page);

    // The notebook, opened by command (galata's notebook helpers hung on cell 69 before).
    const file = `${tmpPath}/air-quality-analysis.ipynb`;
    const prompt = '%%llm --no-history\nHow should I restructure this analysis so it is faster and easier to check?';
    expect(await page.contents.uploadContent(JSON.stringify(notebook(CELLS, ASKED, prompt)), 'text', file)).toBe(true);
    await page.evaluate(async file => {
      await (window as any).jupyterapp.commands.execute('docmanager:open', { path: file });
    }, file);
    await page.waitForFunction(count => {
      const panel = (window as any).jupyterapp.shell.currentWidget;
      return panel?.context?.isReady && panel.content.widgets.length === count;
    }, CELLS, { polling: 200 });
    await page.evaluate(async asked => {
      const panel = (window as any).jupyterapp.shell.currentWidget;
      await panel.sessionContext.ready;
      panel.content.activeCellIndex = asked;
      panel.content.mode = 'command';
      await panel.content.scrollToItem(asked, 'start'); // the answer grows into view below
    }, ASKED);
    await page.waitForTimeout(2000); // the kernel's start and the 70 cells' outputs settle
    await page.evaluate(installProbe, ASKED);

    // Unmeasured: the first answer loads MathJax and the code highlighters, and warms the JIT.
    await answer(page, cdp, request, markdownAnswer(5000), 0.005);
    // Whether the notebook syncs through real-time collaboration (jupyter-collaboration installed).
    const rtc = await page.evaluate(() => Boolean((window as any).jupyterapp.shell.currentWidget.context.model.collaborative));
    const results: Record<string, unknown>[] = [];
    for (let r = 0; r < REPEATS; r++) {
      for (const bytes of SIZES) {
        results.push({ rtc, ...(await answer(page, cdp, request, markdownAnswer(bytes), INTERVAL)) });
      }
    }
    fs.writeFileSync(path.join(OUT, `markdown-${headings}.json`), JSON.stringify(results, null, 1));

    if (PROFILE) {
      // One more 60 KB answer under the sampling profiler (which slows it: not in the figures).
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 250 }); // µs
      await cdp.send('Profiler.start');
      const run = await answer(page, cdp, request, markdownAnswer(SIZES[SIZES.length - 1]), INTERVAL, true);
      const { profile } = await cdp.send('Profiler.stop');
      fs.writeFileSync(path.join(OUT, `markdown-profile-${headings}.json`), JSON.stringify({ ...run, profile }));
    }
  });
});
}

/** Until the asked cell's output has not changed for `ms` (the probe notes its changes). */
async function quiet(page: IJupyterLabPageFixture, ms: number): Promise<void> {
  await page.waitForFunction(ms => performance.now() - (window as any).benchProbe.lastChange > ms, ms, {
    polling: 100,
    timeout: 60000
  });
}

/** Stream `answer` into the asked cell with the toolbar's command and measure it (probe.ts). */
async function answer(
  page: IJupyterLabPageFixture,
  cdp: CDPSession,
  request: APIRequestContext,
  answer: { text: string; markers: number },
  interval: number,
  profiled = false
): Promise<Record<string, unknown>> {
  const chunks = chunked(answer.text, CHUNK_BYTES);
  await script(request, { chunks, interval });
  // Each answer starts from an empty output and a collected heap, outside the measurement.
  await page.evaluate(asked => {
    (window as any).jupyterapp.shell.currentWidget.content.widgets[asked].model.outputs.clear();
  }, ASKED);
  await quiet(page, 500);
  await cdp.send('HeapProfiler.collectGarbage');

  // A trace for the tasks' thread time (trace.ts); not beside the sampling profiler.
  const browser = page.context().browser()!;
  if (!profiled) {
    await browser.startTracing(rawPage(page), { categories: CATEGORIES });
  }
  const before = await scripting(cdp);
  const started: { at: number; streaming: boolean } = await page.evaluate(({ asked, profiled, mark }) => {
    const w = window as any;
    w.benchProbe.reset();
    w.benchProbe.active = true;
    if (profiled) {
      // Sampled busy-waiting that ends at `at`: where the command starts in the profile's clock.
      (function cellmageBenchStart() {
        const spin = performance.now();
        while (performance.now() - spin < 5) {
          // nothing
        }
      })();
    }
    const at = performance.now();
    console.timeStamp(mark);
    // Not awaited: the command resolves only when the answer ends.
    void w.jupyterapp.commands.execute('cellmage:run-cell');
    const cell = w.jupyterapp.shell.currentWidget.content.widgets[asked];
    return { at, streaming: cell.node.classList.contains('jp-cellmage-streaming') };
  }, { asked: ASKED, profiled, mark: START });
  expect(started.streaming).toBe(true); // the command took the asked cell
  await page.waitForFunction(asked => {
    const w = window as any;
    const cell = w.jupyterapp.shell.currentWidget.content.widgets[asked];
    return w.benchProbe.doneAt !== null && !cell.node.classList.contains('jp-cellmage-streaming');
  }, ASKED, { polling: 250, timeout: 120000 });
  await quiet(page, QUIET_MS);
  const scriptingMs = ((await scripting(cdp)) - before) * 1000;
  const tasks = profiled ? null : longestTasks(await browser.stopTracing());

  const m = await page.evaluate(({ asked, start }) => {
    const w = window as any;
    const p = w.benchProbe;
    p.active = false;
    // Every long task of this answer, up to now: the quiet time after the final render included,
    // so work that the answer's end sets off elsewhere in the page (the table of contents) counts.
    const tasks = p.longTasks.filter((t: any) => t.end > start);
    const within = (from: number, to: number) => tasks.filter((t: any) => t.end > from && t.end <= to);
    const longest = (from: number, to: number) => Math.max(0, ...within(from, to).map((t: any) => t.end - t.start));
    // Total blocking time: of each long task, what passed 50 ms (input waited that long)
    const blocked = (from: number, to: number) =>
      within(from, to).reduce((sum: number, t: any) => sum + Math.max(0, t.end - t.start - 50), 0);
    const cell = w.jupyterapp.shell.currentWidget.content.widgets[asked];
    return {
      arrived: p.arrivals.size,
      latencies: [...p.arrivals].filter(([k]) => p.shown.has(k)).map(([k, t]) => p.shown.get(k) - t),
      // Of which: until the renderer put it in the DOM (waiting for a render, rendering)
      toDom: [...p.arrivals].filter(([k]) => p.inDom.has(k)).map(([k, t]) => p.inDom.get(k) - t),
      streamingMs: p.doneAt - start,
      finalMs: p.lastFrame - p.doneAt, // the done event's arrival → the final render's pixels
      longestStreamingMs: longest(start, p.doneAt), // tasks that ended before `done` arrived
      longestEndMs: longest(p.doneAt, Infinity),
      blockedStreamingMs: blocked(start, p.doneAt),
      blockedEndMs: blocked(p.doneAt, Infinity),
      longTasksEnd: within(p.doneAt, Infinity).length,
      // The table of contents' entries once it settled (the answer's headings are among them)
      tocEntries: document.querySelectorAll('.jp-TableOfContents-content .jp-tocItem').length,
      // For a profile: times from the command's start
      doneAtMs: p.doneAt - start,
      longTasks: tasks.map((t: any) => [t.start - start, t.end - start]),
      outputs: cell.model.outputs.length,
      shownText: cell.outputArea.node.textContent as string
    };
  }, { asked: ASKED, start: started.at });

  // The whole answer arrived and shows, and nothing went wrong on the way.
  const sent = (await (await request.get(`${FAKE}/received`)).json()).received;
  expect(sent.map((s: any) => [s.finished, s.closed_by_client])).toEqual([[true, false]]);
  expect(m.arrived).toBe(answer.markers);
  expect(m.shownText.match(MARKER)?.length).toBe(answer.markers);
  expect(m.outputs).toBe(1); // no problem line after the answer
  expect(m.latencies.length).toBe(answer.markers);

  const { shownText, ...figures } = m;
  return {
    bytes: answer.text.length,
    chunks: chunks.length,
    intervalMs: interval * 1000,
    scriptingMs,
    longestStreamingCpuMs: tasks?.streaming.cpuMs,
    longestEndCpuMs: tasks?.end.cpuMs,
    ...figures
  };
}
