/**
 * The lab plugin's benchmark, run by bench/lab_bench.py (which sets NODE_PATH to ui-tests'
 * node_modules and starts nothing itself: Playwright starts JupyterLab as the UI tests do).
 *
 * Its own ports (JupyterLab on 8895, the fake provider on 8896, or CELLMAGE_BENCH_PORT and
 * CELLMAGE_BENCH_FAKE_PORT), so it may run while the browser tests use 8888 and 8891.
 */
const os = require('os');
const path = require('path');
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');
const uiTests = path.resolve(__dirname, '..', '..', 'ui-tests');
const port = process.env.CELLMAGE_BENCH_PORT || '8895';
const fakePort = process.env.CELLMAGE_BENCH_FAKE_PORT || '8896';

module.exports = {
  ...baseConfig,
  testDir: __dirname,
  testMatch: '*.bench.ts',
  // Not ui-tests/test-results: Playwright empties its output folder when it starts, and the
  // browser tests may be running meanwhile.
  outputDir: path.join(os.tmpdir(), 'cellmage-lab-bench-results'),
  timeout: 300000,
  workers: 1, // one page at a time: the figures are about one user's page on two cores
  reporter: [['list']],
  use: {
    ...baseConfig.use,
    baseURL: `http://localhost:${port}`,
    video: 'off',
    trace: 'off',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync']
    }
  },
  webServer: {
    command: 'jlpm start', // with CELLMAGE_UI_COLLAB=1: real-time collaboration on
    cwd: uiTests,
    env: { ...process.env, CELLMAGE_UI_PORT: port, CELLMAGE_UI_FAKE_PORT: fakePort },
    url: `http://localhost:${port}/lab`,
    timeout: 120 * 1000,
    reuseExistingServer: false
  }
};
