import { expect, test } from '@jupyterlab/galata';

test.describe('CellMage lab plugin', () => {
  test('the status command reports the server extension and its default model', async ({
    page
  }) => {
    // The command is registered by the plugin and reaches the server's API. (Not awaited:
    // it resolves only when the dialog is closed.)
    await page.evaluate(() => {
      void window.jupyterapp.commands.execute('cellmage:show-status');
    });

    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toBeVisible();
    await expect(dialog).toContainText('cellmage-server 0.1.0');
    await expect(dialog).toContainText('2 model(s) available.');
    await expect(dialog).toContainText('Default model: fake-fast');
    await page.screenshot({ path: test.info().outputPath('status-dialog.png') });
  });

  test('the command is in the palette', async ({ page }) => {
    await page.keyboard.press('Control+Shift+c');
    await page.locator('#modal-command-palette input').fill('CellMage');
    await expect(
      page.locator('#modal-command-palette').getByText('CellMage: Server Status')
    ).toBeVisible();
  });
});
