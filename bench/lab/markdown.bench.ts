/**
 * A Markdown-heavy answer (headings, lists, tables, fenced code with `<` and `&`) of 30 KB and
 * 60 KB, streamed in token-sized deltas into a cell of a 70-cell notebook, measured in Chromium:
 * the longest main-thread task while it streams and when it ends, main-thread scripting (60 KB
 * against 30 KB), and the time from a delta's arrival in the page to its text in the output (p95).
 * Results go to the file named by CELLMAGE_BENCH_OUT_MD.
 */
import { expect, test } from '@jupyterlab/galata';
import * as fs from 'fs';

const FAKE = 'http://127.0.0.1:8891/_fake';
const REPEATS = Number(process.env.CELLMAGE_BENCH_REPEATS || 3);

/** A realistic answer: sections of prose, lists, a table and code, with a numbered mark in each. */
function answer(bytes: number): string {
  const parts: string[] = [];
  let n = 0;
  let size = 0;
  while (size < bytes) {
    const section = [
      `## Step ${n}: load and check the data (mark${String(n).padStart(4, '0')})`,
      '',
      `Read the file with **pandas**, then check that every row has a date; rows where \`amount < 0\` ` +
        'are refunds & must be kept apart. The *median* is more robust than the mean here.',
      '',
      '- parse the dates with `pd.to_datetime`',
      '- drop exact duplicates, keeping the first',
      `- group by \`customer_id\` and sum (section ${n})`,
      '',
      '| column | type | note |',
      '|---|---|---|',
      '| `date` | datetime | UTC |',
      '| `amount` | float | < 0 for refunds |',
      '',
      '```python',
      'import pandas as pd',
      '',
      `df = pd.read_csv("sales_${n}.csv", parse_dates=["date"])`,
      'refunds = df[df["amount"] < 0]',
      'totals = df[df["amount"] >= 0].groupby("customer_id")["amount"].sum()',
      'print(totals.sort_values(ascending=False).head(10))',
      '```',
      '',
      'Then run it with `python report.py > out.txt && echo done`.',
      '',
      ''
    ].join('\n');
    parts.push(section);
    size += section.length;
    n++;
  }
  return parts.join('');
}

function tokens(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += 4) {
    out.push(text.slice(i, i + 4));
  }
  return out;
}

/** A notebook of 70 cells: Markdown and code, some with outputs, as a real analysis has. */
function notebook(): Record<string, unknown> {
  const cells: Record<string, unknown>[] = [];
  for (let i = 0; i < 69; i++) {
    if (i % 3 === 0) {
      cells.push({ cell_type: 'markdown', metadata: {}, source: `## Part ${i}\n\nSome notes with *emphasis*, a [link](https://example.org) and $x^2$.` });
    } else {
      cells.push({
        cell_type: 'code', metadata: {}, execution_count: i, source: `x_${i} = [k * ${i} for k in range(10)]\nprint(sum(x_${i}))`,
        outputs: [{ output_type: 'stream', name: 'stdout', text: `${45 * i}\n` }]
      });
    }
  }
  cells.push({ cell_type: 'code', metadata: {}, execution_count: null, source: 'Explain how to report sales per customer.', outputs: [] });
  return { cells, metadata: {}, nbformat: 4, nbformat_minor: 5 };
}

test('a Markdown-heavy answer in a 70-cell notebook', async ({ page, request, tmpPath }) => {
  const cdp = await page.context().newCDPSession(page.page);
  await cdp.send('Performance.enable');
  const script = async () => (await cdp.send('Performance.getMetrics')).metrics.find(m => m.name === 'ScriptDuration')!.value;
  const path = `${tmpPath}/long.ipynb`;
  await request.put(`/api/contents/${path}`, { data: { type: 'notebook', format: 'json', content: notebook() } });
  await page.evaluate(p => (window as any).jupyterapp.commands.execute('docmanager:open', { path: p }), path);
  await expect.poll(() => page.evaluate(() => (window as any).jupyterapp.shell.currentWidget?.context?.path)).toBe(path);
  await expect(page.locator('.jp-Cell')).toHaveCount(70, { timeout: 30000 });
  const results: Record<string, unknown>[] = [];

  for (let r = 0; r < REPEATS; r++) {
    for (const bytes of [30000, 60000]) {
      for (const watch of [false, true]) {
        await request.post(`${FAKE}/reset`);
        await request.post(`${FAKE}/script`, { data: [{ chunks: tokens(answer(bytes)), interval: 0.001 }] });
        await page.notebook.selectCells(69);
        await page.evaluate(w => {
          const win = window as any;
          const cell = win.jupyterapp.shell.currentWidget.content.activeCell;
          win.benchLongest = { streaming: 0, end: 0 };
          win.benchPhase = 'streaming';
          win.benchObserver?.disconnect();
          win.benchObserver = new PerformanceObserver(list => {
            for (const e of list.getEntries()) {
              win.benchLongest[win.benchPhase] = Math.max(win.benchLongest[win.benchPhase], e.duration);
            }
          });
          win.benchObserver.observe({ type: 'longtask' });
          win.benchArrived = new Map<number, number>();
          win.benchShown = new Map<number, number>();
          win.benchFetch = win.benchFetch ?? window.fetch;
          win.benchMutations?.disconnect();
          if (!w) {
            window.fetch = win.benchFetch;
            return;
          }
          // When each mark arrives in the page (a tee of the answer's stream) ...
          window.fetch = async (...args: any[]) => {
            const response: Response = await win.benchFetch(...args);
            if (!String(args[0]).includes('cellmage/api/chat') || !response.body) {
              return response;
            }
            const [mine, theirs] = response.body.tee();
            void (async () => {
              const reader = mine.getReader();
              const decoder = new TextDecoder();
              let seen = '';
              for (;;) {
                const { done, value } = await reader.read();
                if (done) {
                  break;
                }
                seen = (seen + decoder.decode(value, { stream: true })).slice(-64);
                for (const m of seen.matchAll(/mark(\d{4})/g)) {
                  if (!win.benchArrived.has(Number(m[1]))) {
                    win.benchArrived.set(Number(m[1]), performance.now());
                  }
                }
              }
            })();
            return new Response(theirs, { status: response.status, statusText: response.statusText, headers: response.headers });
          };
          // ... and when its text is in the output, painted at the next frame.
          let next = 0;
          win.benchMutations = new MutationObserver(() => {
            const text = cell.node.querySelector('.jp-OutputArea')?.textContent ?? '';
            while (text.includes(`mark${String(next).padStart(4, '0')}`)) {
              const index = next++;
              requestAnimationFrame(() => win.benchShown.set(index, performance.now()));
            }
          });
          win.benchMutations.observe(cell.node, { childList: true, subtree: true, characterData: true });
        }, watch);
        const before = await script();
        const started = Date.now();
        await page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell'));
        await expect(page.locator('.jp-Cell').nth(69)).not.toHaveClass(/jp-cellmage-streaming/, { timeout: 180000 });
        await page.evaluate(() => ((window as any).benchPhase = 'end'));
        await page.waitForTimeout(500); // the final render and typesetting
        const seconds = (Date.now() - started) / 1000;
        const scripting = ((await script()) - before) * 1000;
        const measured = await page.evaluate(() => {
          const win = window as any;
          const lags: number[] = [];
          for (const [mark, arrived] of win.benchArrived) {
            if (win.benchShown.has(mark)) {
              lags.push(win.benchShown.get(mark) - arrived);
            }
          }
          lags.sort((a, b) => a - b);
          return { longest: win.benchLongest, lags, marks: win.benchArrived.size };
        });
        const text = await page.locator('.jp-Cell').nth(69).locator('.jp-OutputArea-output').first().textContent();
        expect(text!.length).toBeGreaterThan(bytes * 0.6);
        const p95 = measured.lags.length ? measured.lags[Math.min(measured.lags.length - 1, Math.floor(measured.lags.length * 0.95))] : null;
        results.push({
          bytes, watch, seconds, scriptingMs: watch ? null : scripting, longestStreamingMs: measured.longest.streaming,
          longestEndMs: measured.longest.end, lagP95Ms: watch ? p95 : null, lagCount: measured.lags.length, marks: measured.marks
        });
      }
    }
  }
  fs.writeFileSync(process.env.CELLMAGE_BENCH_OUT_MD || 'lab-bench-md.json', JSON.stringify(results, null, 1));
});
