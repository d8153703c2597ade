// The same plugin in Notebook 7: its notebook page has the cell toolbar, and the button streams.
import { expect, test } from '@playwright/test';

const NOTEBOOK7 = 'http://localhost:8889';
import { fakeProvider, words } from '../helpers';

// Notebook 7's server has its own fake provider (jupyter_server_test_config.py)
const { script } = fakeProvider('http://127.0.0.1:8892/_fake');

test('Notebook 7: the cell-toolbar button streams the answer into the output', async ({ page, request }) => {
  await script(request, { chunks: ['Bonjour ', 'from ', 'Notebook 7'], interval: 0.05 });
  const name = `nb7-${Date.now()}.ipynb`;
  const notebook = {
    type: 'notebook',
    content: {
      cells: [{ cell_type: 'code', source: 'Say hello.', metadata: {}, outputs: [], execution_count: null }],
      metadata: {},
      nbformat: 4,
      nbformat_minor: 5
    }
  };
  expect((await request.put(`${NOTEBOOK7}/api/contents/${name}`, { data: notebook })).ok()).toBe(true);
  try {
    await page.goto(`${NOTEBOOK7}/notebooks/${name}`);
    // No kernel at all: the answer comes from the server, not from a kernel.
    await page.getByRole('dialog').getByRole('button', { name: 'No Kernel' }).click();
    const cell = page.locator('.jp-Cell').first();
    await cell.locator('.jp-InputArea-editor').click();
    await page.keyboard.press('Escape');

    await cell.locator('.jp-cell-toolbar [data-command="cellmage:run-cell"]').click();

    await expect(cell.locator('.jp-OutputArea-output').first()).toContainText('Bonjour from Notebook 7');
    await page.screenshot({ path: test.info().outputPath('notebook7.png') });
  } finally {
    await request.delete(`${NOTEBOOK7}/api/contents/${name}`);
  }
});

test('Notebook 7: the %%llm magic renders live Markdown while it streams', async ({ page, request }) => {
  const chunks = ['# Plan\n\n', '- one\n', '- two\n\n', ...words(50)];
  await script(request, { chunks, interval: 0.08 });
  const name = `nb7-magic-${Date.now()}.ipynb`;
  const code = (source: string) => ({ cell_type: 'code', source, metadata: {}, outputs: [], execution_count: null });
  const notebook = {
    type: 'notebook',
    content: {
      cells: [code('%load_ext cellmage_server'), code('%%llm --stream\nPlan it.')],
      metadata: { kernelspec: { name: 'python3', display_name: 'Python 3', language: 'python' } },
      nbformat: 4,
      nbformat_minor: 5
    }
  };
  expect((await request.put(`${NOTEBOOK7}/api/contents/${name}`, { data: notebook })).ok()).toBe(true);
  try {
    await page.goto(`${NOTEBOOK7}/notebooks/${name}`);
    // Wait for the kernel as a user does: a run asked before the session is up is cleared by
    // JupyterLab (CodeCell.execute with no kernel), so on a loaded machine Shift+Enter was lost.
    await expect(page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]')).toHaveCount(1, { timeout: 60000 });
    // Run both cells as a user does: the first loads the extension, the second asks
    await page.locator('.jp-Cell').first().locator('.jp-InputArea-editor').click();
    await page.keyboard.press('Shift+Enter');
    await expect(page.locator('.jp-Cell').first().locator('.jp-InputPrompt')).toContainText('[1]', { timeout: 30000 });
    await page.keyboard.press('Shift+Enter');
    const cell = page.locator('.jp-Cell').nth(1);
    // Rendered Markdown while it streams (a heading before the end), the stdout copy hidden
    await expect(cell.locator('.jp-cellmage-Live h1')).toHaveText('Plan', { timeout: 30000 });
    await expect(cell.locator('.jp-cellmage-Live li')).toHaveCount(2);
    await expect(cell).toHaveAttribute('aria-busy', 'true');
    await expect(cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stdout"]')).toBeHidden();
    // Then the stored answer with its status line
    await expect(cell.locator('.jp-cellmage-Answer')).toContainText('fake-fast', { timeout: 30000 });
    await expect(cell.locator('.jp-cellmage-Answer')).toContainText('word49');
  } finally {
    await request.delete(`${NOTEBOOK7}/api/contents/${name}`);
  }
});
