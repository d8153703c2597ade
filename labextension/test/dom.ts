// What render.ts needs to run under node's test runner: a DOM (jsdom, whose HTML parser is the
// standard's, template contents included) and JupyterLab's math helpers. Import this first.
//
// `@jupyterlab/rendermime`'s index is written for a bundler (imports without file extensions), so
// node cannot load it; render.ts takes only `removeMath` and `replaceMath` from it, and those come
// from their own module of that package, unchanged. The package's `lib/*.js` are ES modules without
// a `"type"` field, hence `--experimental-detect-module --experimental-require-module` in the test
// script (node 20; both are on by default from node 22/23).
import { JSDOM } from 'jsdom';

const window = new JSDOM('<!doctype html><html><body></body></html>').window;
Object.assign(globalThis, { document: window.document });
// node 20 has no global `navigator`; JupyterLab's math helpers ask it which browser this is.
if (!('navigator' in globalThis)) {
  Object.assign(globalThis, { navigator: window.navigator });
}

const latex = require('@jupyterlab/rendermime/lib/latex');
const index = require.resolve('@jupyterlab/rendermime');
require.cache[index] = { id: index, filename: index, loaded: true, exports: latex } as NodeJS.Module;

export const { document } = window;
