/**
 * The browser test of the team deployment (hub/): a real JupyterHub with configurable-http-proxy
 * on 8010 and a LiteLLM Proxy on 8011 in front of the fake provider (8013), started by
 * `python -m tests.hub.serve` (tests/hub/). Run it with `jlpm playwright test -c playwright.hub.config.js`.
 */
const base = require('./playwright.config.js');

module.exports = {
  ...base,
  testDir: './hub',
  // *.hub.ts, not *.spec.ts: the default config (testDir ui-tests/) must not pick this test up.
  testMatch: '**/*.hub.ts',
  outputDir: './test-results/hub',
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report/hub' }]],
  use: { ...base.use, baseURL: 'http://127.0.0.1:8010' },
  webServer: [
    {
      command: 'cd .. && python -m tests.hub.serve',
      url: 'http://127.0.0.1:8013/_fake/received',
      timeout: 240 * 1000,
      reuseExistingServer: false,
      // SIGTERM, so that serve.py stops the hub, its servers and proxy, and the gateway.
      gracefulShutdown: { signal: 'SIGTERM', timeout: 30000 },
      env: { ...process.env, LITELLM_LOCAL_MODEL_COST_MAP: 'True' }
    }
  ]
};
