/**
 * The asking page of bench/collab_bench.py: the real lab plugin in Chromium (Playwright, driven as a
 * library so that the benchmark can steer it line by line). Reads one JSON command a line on stdin,
 * answers one JSON line on stdout:
 *
 *   {"cmd": "open", "path": P, "fileId": F}  → opens notebook P (its kernel idle), its cell 0 active
 *                                               → {"ev": "opened", "ms": …}
 *   {"cmd": "ask"}                           → zeroes the counters, → {"ev": "asking"}, runs
 *                                               `cellmage:run-cell` → {"ev": "asked", "ms": …} when
 *                                               the command resolves (the stored answer written)
 *   {"cmd": "count"}                         → the room websocket's bytes since `ask`:
 *                                               {"ev": "count", "sent", "sentFrames", "received", "receivedFrames"}
 *   {"cmd": "close"}                         → shuts the notebook's kernel down, closes its tab
 *   {"cmd": "quit"}
 *
 * Bytes are the payloads of the frames on the notebook's collaboration websocket
 * (`api/collaboration/room/json:notebook:<fileId>`), as Chromium's DevTools protocol reports them
 * (Network.webSocketFrameSent / …Received, which Playwright's `framesent` / `framereceived` carry).
 *
 * Environment: CELLMAGE_COLLAB_URL (the JupyterLab base URL), CHROMIUM_PATH; NODE_PATH must reach
 * ui-tests' node_modules (playwright).
 */
const readline = require('readline');
const { chromium } = require('playwright');

const BASE = process.env.CELLMAGE_COLLAB_URL || 'http://localhost:8897';

function reply(data) {
  process.stdout.write(JSON.stringify(data) + '\n');
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync']
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on('pageerror', e => process.stderr.write(`[page error] ${e}\n`));

  let room = null; // the current notebook's room name (json:notebook:<fileId>)
  const counts = { sent: 0, sentFrames: 0, received: 0, receivedFrames: 0 };
  const size = payload => (typeof payload === 'string' ? Buffer.byteLength(payload) : payload.length);
  page.on('websocket', ws => {
    const url = ws.url();
    if (!url.includes('api/collaboration/room/')) {
      return;
    }
    const mine = () => room !== null && decodeURIComponent(url).includes(`/${room}`);
    ws.on('framesent', f => {
      if (mine()) {
        counts.sent += size(f.payload);
        counts.sentFrames++;
      }
    });
    ws.on('framereceived', f => {
      if (mine()) {
        counts.received += size(f.payload);
        counts.receivedFrames++;
      }
    });
  });

  await page.goto(`${BASE}/lab`);
  await page.waitForFunction(() => window.jupyterapp !== undefined && window.jupyterapp.started !== undefined);
  await page.evaluate(async () => {
    await window.jupyterapp.started;
    await window.jupyterapp.restored;
  });
  reply({ ev: 'ready' });

  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    if (!line.trim()) {
      continue;
    }
    const command = JSON.parse(line);
    const t0 = Date.now();
    try {
      if (command.cmd === 'open') {
        room = `json:notebook:${command.fileId}`;
        await page.evaluate(async path => {
          const app = window.jupyterapp;
          const panel = await app.commands.execute('docmanager:open', { path });
          await panel.context.ready;
          await panel.sessionContext.ready;
          app.shell.activateById(panel.id);
          const deadline = Date.now() + 30000;
          while (panel.content.widgets.length === 0 || panel.sessionContext.session?.kernel?.status !== 'idle') {
            if (Date.now() > deadline) {
              throw new Error('the notebook did not load, or its kernel did not become idle');
            }
            await new Promise(r => setTimeout(r, 50));
          }
          panel.content.activeCellIndex = 0;
          panel.content.mode = 'command';
        }, command.path);
        await page.waitForTimeout(1500); // let the opening's own traffic (kernel info, awareness) pass
        reply({ ev: 'opened', ms: Date.now() - t0 });
      } else if (command.cmd === 'ask') {
        for (const k of Object.keys(counts)) {
          counts[k] = 0;
        }
        reply({ ev: 'asking' });
        await page.evaluate(async () => {
          const app = window.jupyterapp;
          const panel = app.shell.currentWidget;
          panel.content.activeCellIndex = 0;
          await app.commands.execute('cellmage:run-cell');
        });
        reply({ ev: 'asked', ms: Date.now() - t0 });
      } else if (command.cmd === 'count') {
        reply({ ev: 'count', ...counts });
      } else if (command.cmd === 'close') {
        await page.evaluate(async () => {
          const panel = window.jupyterapp.shell.currentWidget;
          await panel.sessionContext.shutdown().catch(() => undefined);
          panel.dispose();
        });
        room = null;
        reply({ ev: 'closed', ms: Date.now() - t0 });
      } else if (command.cmd === 'quit') {
        break;
      } else {
        throw new Error(`unknown command ${command.cmd}`);
      }
    } catch (error) {
      reply({ ev: 'error', message: String(error && error.stack ? error.stack : error) });
    }
  }
  await browser.close();
}

main().catch(error => {
  reply({ ev: 'error', message: String(error && error.stack ? error.stack : error) });
  process.exit(1);
});
