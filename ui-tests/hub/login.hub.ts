import { expect, Page, test } from '@playwright/test';

import { fakeProvider, words } from '../helpers';

// The stack of tests/hub/serve.py: JupyterHub (with configurable-http-proxy) on 8010, LiteLLM
// Proxy between ada's server and the fake provider, whose controls are on 8013.
const { script, received } = fakeProvider('http://127.0.0.1:8013/_fake');

async function logIn(page: Page, user: string) {
  await page.goto('/hub/login');
  await page.locator('#username_input').fill(user);
  await page.locator('#password_input').fill('ada-and-bob');
  await page.locator('#login_submit').click();
  await page.waitForURL(/\/user\/ada\//, { timeout: 60000 });
}

test('ada logs in to the hub, opens a notebook in /user/ada/lab and sees the answer grow', async ({
  page,
  request
}) => {
  await script(request, { chunks: words(30), interval: 0.08 });

  await logIn(page, 'ada');
  await page.goto('/user/ada/lab/tree/hub.ipynb');
  const cell = page.locator('.jp-Notebook .jp-Cell').first();
  await expect(cell).toContainText('Explain streaming.', { timeout: 60000 });
  await cell.locator('.jp-InputArea-editor').click();

  // When the answer's text grows, from inside the page (rendering may coalesce: count lengths, not frames).
  await page.evaluate(() => {
    const stamps: [number, number][] = [];
    (window as any).cellmageGrowth = stamps;
    const cellNode = document.querySelector('.jp-Notebook .jp-Cell')!;
    new MutationObserver(() => {
      const output = cellNode.querySelector('.jp-OutputArea');
      const length = output ? (output.textContent || '').length : 0;
      const last = stamps[stamps.length - 1];
      if (!last || last[1] !== length) {
        stamps.push([performance.now(), length]);
      }
    }).observe(cellNode, { subtree: true, childList: true, characterData: true });
  });

  const button = page.locator('.jp-cell-toolbar [data-command="cellmage:run-cell"]').first();
  await button.click();

  const output = cell.locator('.jp-OutputArea-output').first();
  await expect(output).toContainText('word29', { timeout: 30000 });
  const growth: [number, number][] = await page.evaluate(() => (window as any).cellmageGrowth);
  const growing = growth.filter(([, length]) => length > 0);
  // 30 words 80 ms apart at the provider: the text grew many times over ~2.4 s, through the hub's
  // proxy and the gateway, not all at once at the end.
  expect(growing.length).toBeGreaterThan(5);
  expect(growing[growing.length - 1][0] - growing[0][0]).toBeGreaterThan(1200);

  const calls = await received(request);
  expect(calls).toHaveLength(1);
  expect(calls[0].body.user).toBe('ada');
  await page.screenshot({ path: test.info().outputPath('hub-answer.png') });
});
