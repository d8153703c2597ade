/**
 * A model's answer is untrusted: the hostile answers of tests/safety_cases.json (the table both
 * clients' safe-Markdown functions are unit-tested against) streamed into a notebook created here
 * (its cells are trusted) through the cell toolbar and through the %%llm magic in a running kernel.
 * No payload may run script (a page flag) or make the browser fetch a URL the model chose (a
 * loopback listener standing in for a remote host): live, after save and reload, and when the
 * stored output is rendered as trusted by JupyterLab's own renderer (a JupyterLab without this
 * extension renders its text/html).
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { APIRequestContext } from '@playwright/test';
import { readFileSync } from 'fs';
import { join } from 'path';

import { chunked, pageRequestsSettled, reopen, script, strayExfil } from '../helpers';

interface ICase {
  name: string;
  answer: string;
  visible: string[];
}
const CASES: ICase[] = JSON.parse(readFileSync(join(__dirname, '..', '..', 'tests', 'safety_cases.json'), 'utf-8')).cases;
const HOSTILE = CASES.filter(c => c.name !== 'normal answer');
const NORMAL = CASES.find(c => c.name === 'normal answer')!;

/** One answer holding every hostile case, cut into small deltas so HTML splits across them. */
const HOSTILE_ANSWER = HOSTILE.map(c => c.answer).join('\n\n') + '\n\nEND-OF-ANSWER';

async function scriptAnswer(request: APIRequestContext, answer: string) {
  await script(request, { chunks: chunked(answer), interval: 0.002 });
}

/** Nothing ran, nothing was fetched, and the output holds only inert elements. */
async function expectInert(page: IJupyterLabPageFixture, request: APIRequestContext, where: string) {
  await pageRequestsSettled(page); // what the rendered answer asked for was sent before this
  expect(await page.evaluate(() => (window as any).cellmagePwned), `script ran (${where})`).toBeUndefined();
  expect(await strayExfil(request), `fetched a URL the model chose (${where})`).toEqual([]);
  const found = await page.evaluate(() => {
    // The plugin's own controls of a code block (Copy, Insert below, Replace: codeactions.ts),
    // which it puts first in each rendered `pre`, one bar per block; nothing a model writes
    // becomes an element, so anything else that is active is the model's.
    const ACTIONS = ['copy', 'insert-below', 'replace-above', 'replace-target'];
    const ours = (el: Element) => {
      const bar = el.parentElement;
      const pre = bar?.parentElement;
      return (
        el.localName === 'button' &&
        el.getAttribute('class') === 'jp-cellmage-CodeAction jp-Button jp-mod-minimal' &&
        ACTIONS.includes(el.getAttribute('data-action') ?? '') &&
        bar?.localName === 'span' &&
        bar.getAttribute('class') === 'jp-cellmage-CodeActions' &&
        pre?.localName === 'pre' &&
        pre.firstElementChild === bar &&
        pre.querySelectorAll(':scope > .jp-cellmage-CodeActions').length === 1
      );
    };
    const outputs = Array.from(document.querySelectorAll('.jp-OutputArea-output'));
    const bad: string[] = [];
    for (const output of outputs) {
      for (const el of Array.from(output.querySelectorAll('img, iframe, script, style, object, embed, form, base, meta, link, video, audio, button'))) {
        if (!ours(el)) {
          bad.push(el.outerHTML.slice(0, 80));
        }
      }
      for (const a of Array.from(output.querySelectorAll('a[href]'))) {
        const href = a.getAttribute('href')!;
        if (!/^(https?:|mailto:|#)/i.test(href) && a.closest('.jp-cellmage-Answer')) {
          bad.push(`href ${href.slice(0, 60)}`);
        }
      }
      for (const el of Array.from(output.querySelectorAll('.jp-cellmage-Answer *'))) {
        for (const attr of Array.from(el.attributes)) {
          if (attr.name.startsWith('on')) {
            bad.push(`${el.localName}[${attr.name}]`);
          }
        }
      }
    }
    return bad;
  });
  expect(found, `active elements in the answer (${where})`).toEqual([]);
}

async function visibleAsWritten(page: IJupyterLabPageFixture, index: number) {
  const text = await page.locator('.jp-Cell').nth(index).locator('.jp-OutputArea-output').first().textContent();
  for (const c of CASES) {
    for (const v of c.visible) {
      if (HOSTILE.includes(c)) {
        expect(text).toContain(v);
      }
    }
  }
}

/** Render the stored HTML as JupyterLab's own HTML renderer does for a trusted output (MathJax too). */
async function renderStoredAsTrusted(page: IJupyterLabPageFixture, html: string) {
  await page.evaluate(async source => {
    const panel = (window as any).jupyterapp.shell.currentWidget;
    const renderer = panel.content.rendermime.createRenderer('text/html');
    const model = { trusted: true, data: { 'text/html': source }, metadata: {}, setData: () => undefined };
    await renderer.renderModel(model);
    renderer.node.classList.add('jp-OutputArea-output', 'cellmage-test-trusted');
    document.body.appendChild(renderer.node);
  }, html);
  await expect(page.locator('.cellmage-test-trusted')).toContainText('END-OF-ANSWER');
}

async function storedHtml(page: IJupyterLabPageFixture, request: APIRequestContext, cell: number): Promise<string> {
  const path = await page.evaluate(() => (window as any).jupyterapp.shell.currentWidget.context.path);
  const saved = await (await request.get(`/api/contents/${path}?content=1`)).json();
  const data = saved.content.cells[cell].outputs.find((o: any) => o.output_type === 'display_data').data;
  expect(Object.keys(data).sort()).toEqual(['application/vnd.cellmage.answer+json', 'text/html']);
  return data['text/html'];
}

test.describe('A model answer runs nothing and fetches nothing', () => {
  test.beforeEach(async ({ page }) => {
    await page.evaluate(() => ((window as any).cellmagePwned = undefined));
  });

  test('cell toolbar, in a notebook created in JupyterLab', async ({ page, request }) => {
    await scriptAnswer(request, HOSTILE_ANSWER);
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', 'Summarise the page I pasted.');
    await page.notebook.selectCells(0);
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell'));
    const output = page.locator('.jp-Cell').first().locator('.jp-OutputArea-output').first();
    await expect(output).toContainText('END-OF-ANSWER', { timeout: 30000 });
    await expect(page.locator('.jp-Cell').first()).not.toHaveClass(/jp-cellmage-streaming/);

    await expectInert(page, request, 'toolbar, live');
    await visibleAsWritten(page, 0);

    await reopen(page);
    await expect(page.locator('.jp-Cell').first().locator('.jp-OutputArea-output').first()).toContainText('END-OF-ANSWER');
    await expectInert(page, request, 'toolbar, after save and reload');
    await visibleAsWritten(page, 0);

    await renderStoredAsTrusted(page, await storedHtml(page, request, 0));
    await expectInert(page, request, 'stored toolbar answer rendered by JupyterLab itself, trusted');
  });

  test('%%llm magic, in a running kernel', async ({ page, request }) => {
    await scriptAnswer(request, HOSTILE_ANSWER);
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', '%load_ext cellmage_server');
    await page.notebook.addCell('code', '%%llm --stream\nSummarise the page I pasted.');
    await page.notebook.runCell(0);
    await page.notebook.runCell(1);
    const output = page.locator('.jp-Cell').nth(1).locator('.jp-OutputArea-output').first();
    await expect(output).toContainText('END-OF-ANSWER', { timeout: 30000 });

    await expectInert(page, request, 'magic, live');
    await visibleAsWritten(page, 1);

    await reopen(page);
    await expect(page.locator('.jp-Cell').nth(1).locator('.jp-OutputArea-output').first()).toContainText('END-OF-ANSWER');
    await expectInert(page, request, 'magic, after save and reload');

    await renderStoredAsTrusted(page, await storedHtml(page, request, 1));
    await expectInert(page, request, 'stored magic answer rendered by JupyterLab itself, trusted');
  });

  test('a normal answer still renders as formatted Markdown, in both clients', async ({ page, request }) => {
    const answer = NORMAL.answer + '\n\nEND-OF-ANSWER';
    await scriptAnswer(request, answer);
    await page.notebook.createNew();
    await page.notebook.setCell(0, 'code', 'Show me formatting.');
    await page.notebook.addCell('code', '%load_ext cellmage_server');
    await page.notebook.addCell('code', '%%llm\nShow me formatting.');
    await page.notebook.selectCells(0);
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('cellmage:run-cell'));
    await expect(page.locator('.jp-Cell').first().locator('.jp-OutputArea-output').first()).toContainText('END-OF-ANSWER');
    await script(request, { chunks: chunked(answer) });
    await page.notebook.runCell(1);
    await page.notebook.runCell(2);

    for (const index of [0, 2]) {
      const answerNode = page.locator('.jp-Cell').nth(index).locator('.jp-cellmage-Answer');
      await expect(answerNode).toContainText('END-OF-ANSWER');
      await expect(answerNode.locator('h1')).toHaveText('Title');
      await expect(answerNode.locator('li')).toHaveCount(2);
      await expect(answerNode.locator('table td').first()).toHaveText('1');
      await expect(answerNode.locator('pre code')).toContainText('#include <stdio.h>');
      await expect(answerNode.locator('pre code')).toContainText('return a < 2 && a > 0;');
      await expect(answerNode.locator('code', { hasText: 'List<String>' })).toHaveCount(1);
      await expect(answerNode.locator('mjx-container, .MathJax').first()).toBeVisible();
      const link = answerNode.locator('a', { hasText: 'docs' });
      await expect(link).toHaveAttribute('href', 'https://example.org/docs?a=1');
      await expect(link).toHaveAttribute('target', '_blank');
      await expect(link).toHaveAttribute('rel', 'noopener noreferrer');
    }
    await page.screenshot({ path: test.info().outputPath('normal-answer.png') });
  });
});
