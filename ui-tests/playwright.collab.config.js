/**
 * The browser tests of real-time collaboration (jupyter-collaboration, the `collab` extra): two
 * pages on one shared notebook, against their own JupyterLab with collaboration on
 * (CELLMAGE_UI_COLLAB=1 in jupyter_server_test_config.py) on 8893 and its fake provider on 8894,
 * so they run beside the default config's servers (8888/8891, 8889/8892). Run it with
 * `jlpm playwright test -c playwright.collab.config.js`.
 */
const base = require('./playwright.config.js');

const port = process.env.CELLMAGE_UI_COLLAB_PORT || '8893';
const fakePort = process.env.CELLMAGE_UI_COLLAB_FAKE_PORT || '8894';
// The specs read the fake provider's control URL from here (workers inherit the environment).
process.env.CELLMAGE_UI_COLLAB_FAKE = `http://127.0.0.1:${fakePort}/_fake`;

module.exports = {
  ...base,
  testDir: './collab',
  testIgnore: [],
  outputDir: './test-results/collab',
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report/collab' }]],
  // One server, one fake provider whose script every test resets: one test at a time.
  workers: 1,
  // Two pages, a kernel and a paced answer per test; each expectation waits at most 30 s.
  timeout: 120 * 1000,
  fullyParallel: false,
  use: { ...base.use, baseURL: `http://localhost:${port}` },
  webServer: [
    {
      command: 'jupyter lab --config jupyter_server_test_config.py',
      url: `http://localhost:${port}/lab`,
      timeout: 120 * 1000,
      // Never someone else's server: these tests need collaboration on and a fresh fake.
      reuseExistingServer: false,
      env: {
        ...process.env,
        CELLMAGE_UI_COLLAB: '1',
        CELLMAGE_UI_PORT: port,
        CELLMAGE_UI_FAKE_PORT: fakePort,
        LITELLM_LOCAL_MODEL_COST_MAP: 'True'
      }
    }
  ]
};
