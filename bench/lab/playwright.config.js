/**
 * The lab plugin's benchmark, run by bench/lab_bench.py (which sets NODE_PATH to ui-tests'
 * node_modules and starts nothing itself: Playwright starts JupyterLab as the UI tests do).
 */
const path = require('path');
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');
const uiTests = path.resolve(__dirname, '..', '..', 'ui-tests');

module.exports = {
  ...baseConfig,
  testDir: __dirname,
  testMatch: '*.bench.ts',
  timeout: 300000,
  reporter: [['list']],
  use: {
    ...baseConfig.use,
    video: 'off',
    trace: 'off',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync']
    }
  },
  webServer: {
    command: 'jlpm start',
    cwd: uiTests,
    url: 'http://localhost:8888/lab',
    timeout: 120 * 1000,
    reuseExistingServer: false
  }
};
