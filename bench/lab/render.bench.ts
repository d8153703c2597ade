/**
 * Streaming a long answer into a cell, measured in Chromium: output renders per second of
 * streaming, the longest main-thread task, and main-thread scripting time for 8,000 chunks
 * against 4,000. Results go to the file named by CELLMAGE_BENCH_OUT.
 */
import { expect, test } from '@jupyterlab/galata';
import * as fs from 'fs';

const FAKE = 'http://127.0.0.1:8891/_fake';
const REPEATS = Number(process.env.CELLMAGE_BENCH_REPEATS || 3);

test('streaming renders', async ({ page, request }) => {
  const cdp = await page.context().newCDPSession(page.page); // the Page behind galata's fixture
  await cdp.send('Performance.enable');
  const script = async () => (await cdp.send('Performance.getMetrics')).metrics.find(m => m.name === 'ScriptDuration')!.value;
  const results: Record<string, unknown>[] = [];

  await page.notebook.createNew();
  for (let r = 0; r < REPEATS; r++) {
    for (const chunks of [4000, 8000]) {
      await request.post(`${FAKE}/reset`);
      await request.post(`${FAKE}/script`, { data: [{ chunks: Array(chunks).fill('abc '), interval: 0.001 }] });
      await page.notebook.setCell(0, 'code', `Answer ${chunks}`);
      await page.notebook.selectCells(0);
      await page.evaluate(() => {
        const w = window as any;
        w.benchRenders = [];
        w.benchLongest = 0;
        w.benchObserver?.disconnect();
        w.benchObserver = new PerformanceObserver(list => {
          for (const e of list.getEntries()) {
            w.benchLongest = Math.max(w.benchLongest, e.duration);
          }
        });
        w.benchObserver.observe({ type: 'longtask' });
        const cell = w.jupyterapp.shell.currentWidget.content.activeCell;
        w.benchSlot?.();
        const slot = () => w.benchRenders.push(performance.now());
        cell.model.outputs.changed.connect(slot);
        w.benchSlot = () => cell.model.outputs.changed.disconnect(slot);
      });
      const before = await script();
      const started = Date.now();
      await page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell'));
      await expect(page.locator('.jp-Cell').first()).not.toHaveClass(/jp-cellmage-streaming/, { timeout: 120000 });
      const seconds = (Date.now() - started) / 1000;
      const scripting = (await script()) - before;
      const measured = await page.evaluate(() => {
        const w = window as any;
        return { renders: w.benchRenders.length, longest: w.benchLongest };
      });
      const text = await page.locator('.jp-Cell').first().locator('.jp-OutputArea-output').first().innerText();
      expect(text.length).toBeGreaterThan(chunks * 3);
      results.push({ chunks, seconds, rendersPerSecond: measured.renders / seconds, longestTaskMs: measured.longest, scriptingMs: scripting * 1000 });
    }
  }
  fs.writeFileSync(process.env.CELLMAGE_BENCH_OUT || 'lab-bench.json', JSON.stringify(results, null, 1));
});
