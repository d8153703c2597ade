/**
 * Galata's configuration, run in Debian's Chromium (Playwright's own browser download does not
 * work on these machines), against `jlpm start` (jupyter_server_test_config.py).
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

module.exports = {
  ...baseConfig,
  reporter: [['list'], ['html', { open: 'never' }]],
  // Collaboration's tests and the installed wheel's need their own servers
  // (playwright.collab.config.js, playwright.wheel.config.js).
  testIgnore: ['**/collab/**', '**/wheel/**'],
  use: {
    ...baseConfig.use,
    video: 'off',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync'
      ]
    }
  },
  webServer: [
    {
      command: 'jlpm start',
      url: 'http://localhost:8888/lab',
      timeout: 120 * 1000,
      reuseExistingServer: !process.env.CI
    },
    {
      command: 'jlpm start:notebook',
      url: 'http://localhost:8889/tree',
      timeout: 120 * 1000,
      reuseExistingServer: !process.env.CI
    }
  ]
};
