/**
 * What the browser specs share: the fake provider's controls (tests/fake_upstream.py, run inside
 * the Jupyter server under test by jupyter_server_test_config.py), scripted answers, and reopening
 * a notebook after a reload.
 *
 * Plain Playwright types only, so the specs that do not use galata (wheel/, hub/) can use it too.
 */
import { APIRequestContext, expect, Page } from '@playwright/test';

/** The fake provider's control URL of the default config's JupyterLab (8888). */
export const FAKE = 'http://127.0.0.1:8891/_fake';

/** The controls of the fake provider at `control` (its `/_fake` URL). */
export function fakeProvider(control: string) {
  return {
    control,
    /** Forget what it received, then answer the next requests with these scripts, in order. */
    async script(request: APIRequestContext, ...scripts: Record<string, unknown>[]): Promise<void> {
      expect((await request.post(`${control}/reset`)).ok()).toBe(true);
      expect((await request.post(`${control}/script`, { data: scripts })).ok()).toBe(true);
    },
    /** The provider requests it received: body, chunks sent, whether the client closed it. */
    async received(request: APIRequestContext): Promise<any[]> {
      return (await (await request.get(`${control}/received`)).json()).received;
    },
    /** The requests for its `/exfil/...` URLs (the hostile answers' stand-in for a remote host). */
    async exfil(request: APIRequestContext): Promise<string[]> {
      return (await (await request.get(`${control}/exfil`)).json()).exfil;
    }
  };
}

export const { script, received, exfil } = fakeProvider(FAKE);

/**
 * Ask from `page`'s active cell (the toolbar command). Resolves when the command does, at the
 * answer's end, with `'ended'`; or with the error if the page went away first (handled at once, so
 * a page that closes mid-answer is an outcome to assert, not an unhandled rejection).
 */
export function ask(page: Page): Promise<string> {
  return page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell')).then(
    () => 'ended',
    (error: Error) => error.message
  );
}

/** What {@link ask} resolves with when the asking page went away before the answer ended. */
export const PAGE_GONE = /Execution context was destroyed|Target page, context or browser has been closed/;

/** `n` words, one chunk each. */
export function words(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `word${i} `);
}

/** `text` cut into chunks of `size` characters (so that HTML and Markdown split across deltas). */
export function chunked(text: string, size = 13): string[] {
  const chunks: string[] = [];
  for (let i = 0; i < text.length; i += size) {
    chunks.push(text.slice(i, i + size));
  }
  return chunks;
}

/** Wait until JupyterLab in `page` has started after a reload (galata's own wait expects the
 * launcher, but JupyterLab restores the notebook instead). */
export async function labStarted(page: Page): Promise<void> {
  await page.waitForFunction(() => (window as any).jupyterapp?.started !== undefined && !document.querySelector('#jupyterlab-splash'));
  await page.evaluate(() => (window as any).jupyterapp.started);
}

/** Open `path` in JupyterLab and wait until it is the current widget. */
export async function openNotebook(page: Page, path: string): Promise<void> {
  await page.evaluate(p => (window as any).jupyterapp.commands.execute('docmanager:open', { path: p }), path);
  await expect.poll(() => page.evaluate(() => (window as any).jupyterapp.shell.currentWidget?.context?.path)).toBe(path);
}

/** Save the current notebook, reload the page and open the notebook again. Returns its path. */
export async function reopen(page: Page): Promise<string> {
  const path: string = await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.context.path);
  await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.context.save());
  await page.reload({ waitForIsReady: false } as Parameters<Page['reload']>[0]);
  await labStarted(page);
  await page.evaluate(() => ((window as any).cellmagePwned = undefined));
  await openNotebook(page, path);
  return path;
}

/**
 * Wait until a request the page makes now has reached the fake provider's `/exfil/` listener and
 * come back: any request the page started before it (an image, a style sheet, a frame a rendered
 * answer asked for) was sent first. The marker is removed from the page again; `exfil` lists it as
 * `GET /exfil/settled-<n>`, which {@link strayExfil} leaves out.
 */
export async function pageRequestsSettled(page: Page, control = FAKE): Promise<void> {
  const url = `${new URL(control).origin}/exfil/settled-${Date.now()}`;
  const loaded = await page.evaluate(
    src =>
      new Promise<boolean>(resolve => {
        const marker = new Image();
        marker.onload = () => resolve(true);
        marker.onerror = () => resolve(true); // the listener answers 404: it was received
        marker.src = src;
        marker.remove();
      }),
    url
  );
  expect(loaded).toBe(true);
}

/** The fake's `/exfil/` requests but the markers of {@link pageRequestsSettled}. */
export async function strayExfil(request: APIRequestContext, control = FAKE): Promise<string[]> {
  return (await fakeProvider(control).exfil(request)).filter(r => !/^GET \/exfil\/settled-\d+$/.test(r));
}
