// The toolbar's context: the page's cells as the model reads them (the table the server's
// notebook.py is tested with), and what each flag sends or refuses.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { CELLMAGE_HINT, cellmageHint, ContextRefused, NO_ERROR, outputsText, pageContext, VAR_REFUSED, WIRE_TEXT } from '../src/context';
import { splitCell } from '../src/flags';

const table = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'tests', 'context_cases.json'), 'utf-8')) as {
  cases: { name: string; outputs: unknown; expected: string }[];
};

for (const c of table.cases) {
  test(`outputs as text: ${c.name}`, () => {
    assert.equal(outputsText(c.outputs), c.expected);
  });
}

const code = (source: string, outputs: unknown[] = [], execution_count: number | null = null, metadata = {}) => ({
  cell_type: 'code',
  source,
  outputs,
  execution_count,
  metadata
});
const error = { output_type: 'error', ename: 'NameError', evalue: "name 'y' is not defined", traceback: ['\u001b[31mNameError\u001b[0m: y'] };
const NOTEBOOK = [
  code('import math', [], 1),
  { cell_type: 'markdown', source: '# Notes', metadata: {} },
  code('print(y)', [error], 2),
  code('%%llm\nEarlier prompt.'),
  code('Asked from the toolbar.', [], null, { cellmage: { prompt: true } }),
  code('x = 3', [{ output_type: 'stream', name: 'stdout', text: 'three\n' }]),
  code('%%llm --cells 2 --error --snippet conventions --sys-snippet style\nWhy?')
];
const ask = (cell: string, cells: unknown[] = NOTEBOOK, index = 6) => pageContext(splitCell(cell).flags, cells, index);

test('--cells N sends the N code cells above as the page shows them, prompt cells left out', () => {
  const context = ask(NOTEBOOK[6].source as string)!;
  assert.deepEqual(context.page_cells, [
    { source: 'print(y)', outputs: 'NameError: y', label: 'In [2]' },
    { source: 'x = 3', outputs: 'three', label: 'cell 6' }
  ]);
  assert.deepEqual(context.error, { text: 'NameError: y' });
  assert.deepEqual(context.snippets, ['conventions']);
  assert.deepEqual(context.sys_snippets, ['style']);
});

test('no context flag, no context', () => {
  assert.equal(ask('%%llm --model m\nHi'), undefined);
  assert.equal(ask('Hi'), undefined);
});

test('--error is the nearest error output above; none above is refused saying what to do', () => {
  assert.deepEqual(ask('%%llm --error\nFix', NOTEBOOK, 5), { error: { text: 'NameError: y' } });
  assert.throws(() => ask('%%llm --error\nFix', NOTEBOOK, 2), (e: unknown) => e instanceof ContextRefused && e.message === NO_ERROR);
});

test('--var is refused in the toolbar: it needs the kernel', () => {
  assert.throws(() => ask('%%llm --var df\nDescribe df'), (e: unknown) => e instanceof ContextRefused && e.message === VAR_REFUSED);
});

test('values of the wrong shape are read as nothing, and long text is cut to what the wire takes', () => {
  const hostile = [null, 'cell', { cell_type: 'code', source: 7, outputs: 'x', execution_count: '1' }, code('y'.repeat(WIRE_TEXT + 10))];
  const context = ask('%%llm --cells 5\nQ', hostile, 4)!;
  assert.deepEqual(context.page_cells!.map(c => [c.source.length, c.outputs, c.label]), [
    [0, '', 'cell 3'],
    [WIRE_TEXT, '', 'cell 4']
  ]);
});

test("CellMage's own load line gets the hint; other missing modules do not", () => {
  const missing = (evalue: string) => ({ output_type: 'error', ename: 'ModuleNotFoundError', evalue, traceback: [] });
  assert.equal(cellmageHint(missing("No module named 'cellmage'")), CELLMAGE_HINT);
  assert.equal(cellmageHint(missing("No module named 'cellmage.integrations'")), CELLMAGE_HINT);
  assert.equal(cellmageHint(missing("No module named 'cellmage_server'")), null);
  assert.equal(cellmageHint(missing("No module named 'pandas'")), null);
  assert.equal(cellmageHint({ ename: 'ModuleNotFoundError', evalue: 7 }), null);
  assert.equal(cellmageHint(null), null);
});
