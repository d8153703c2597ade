/**
 * The browser smoke test of the installed wheel (wheel/): JupyterLab from the virtualenvs of
 * tests/wheel/venvs.sh, with only the venv on PATH (no Node), configured to a fake provider by
 * tests/wheel/server_config.py. The oldest JupyterLab supported on 8920 (fake provider 8921),
 * the newest on 8922 (fake 8923). Run it with `jlpm playwright test -c playwright.wheel.config.js`
 * after `bash tests/wheel/build.sh && bash tests/wheel/venvs.sh`.
 */
const crypto = require('crypto');
const path = require('path');
const base = require('./playwright.config.js');

const venvs = path.resolve(__dirname, '..', 'build', 'wheel');
const serverConfig = path.resolve(__dirname, '..', 'tests', 'wheel', 'server_config.py');
// The specs read the token from here (workers inherit the environment).
process.env.CELLMAGE_WHEEL_TOKEN = process.env.CELLMAGE_WHEEL_TOKEN || crypto.randomBytes(16).toString('hex');

const labs = [
  { name: 'oldest', port: 8920, fakePort: 8921 },
  { name: 'newest', port: 8922, fakePort: 8923 }
];

module.exports = {
  testDir: './wheel',
  outputDir: './test-results/wheel',
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report/wheel' }]],
  timeout: 120 * 1000,
  use: {
    launchOptions: base.use.launchOptions,
    video: 'off',
    trace: 'retain-on-failure',
    viewport: { width: 1280, height: 720 }
  },
  projects: labs.map(lab => ({
    name: lab.name,
    metadata: { fake: `http://127.0.0.1:${lab.fakePort}/_fake` },
    use: { baseURL: `http://127.0.0.1:${lab.port}` }
  })),
  webServer: labs.map(lab => ({
    command: `${path.join(venvs, lab.name, 'bin', 'jupyter')} lab --config ${serverConfig}`,
    cwd: venvs,
    url: `http://127.0.0.1:${lab.port}/api`,
    timeout: 120 * 1000,
    reuseExistingServer: false,
    env: {
      HOME: process.env.HOME,
      PATH: path.join(venvs, lab.name, 'bin'),
      CELLMAGE_WHEEL_PORT: String(lab.port),
      CELLMAGE_WHEEL_FAKE_PORT: String(lab.fakePort),
      CELLMAGE_WHEEL_TOKEN: process.env.CELLMAGE_WHEEL_TOKEN,
      LITELLM_LOCAL_MODEL_COST_MAP: 'True'
    }
  }))
};
