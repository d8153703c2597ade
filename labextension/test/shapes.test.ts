// Ids read from a notebook against the table the server is tested with; and the API paths the
// plugin refuses to build.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { answerId, answerPath, apiPath, cellId } from '../src/shapes';

interface ICase {
  value: unknown;
  ok: boolean;
  repeat?: number;
}

const table = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'tests', 'shape_cases.json'), 'utf-8')) as {
  answer_id: ICase[];
  cell_id: ICase[];
};
const valueOf = (c: ICase): unknown => (c.repeat ? (c.value as string).repeat(c.repeat) : c.value);
const label = (c: ICase): string => JSON.stringify(c.value).slice(0, 50) + (c.repeat ? ` ×${c.repeat}` : '');

for (const c of table.answer_id) {
  test(`answer id ${label(c)} is ${c.ok ? 'taken' : 'ignored'}`, () => {
    assert.equal(answerId(valueOf(c)), c.ok ? valueOf(c) : null);
    if (c.ok) {
      assert.equal(answerPath(valueOf(c) as string, 'events'), `answers/${valueOf(c)}/events`);
    } else {
      assert.throws(() => answerPath(valueOf(c) as string, 'settle'), TypeError);
      assert.throws(() => answerPath(valueOf(c) as string, 'cancel'), TypeError);
    }
  });
}

for (const c of table.cell_id) {
  test(`cell id ${label(c)} is ${c.ok ? 'taken' : 'ignored'}`, () => {
    assert.equal(cellId(valueOf(c)), c.ok ? valueOf(c) : null);
  });
}

test('an API path that could leave the API root is refused', () => {
  for (const path of ['status', 'models', 'conversations/a%2Fb.ipynb', 'conversations/a.b/turns/c-1', 'answers/x..y']) {
    assert.equal(apiPath(path), path);
  }
  for (const path of [
    '../api/kernels', 'answers/../../api/kernels', 'answers/..', 'answers/.', '%2e%2e/api/kernels', '.%2E/x',
    'a/%2E%2e/b', '..\\api\\terminals', 'status?x=1', 'status#x', '/api/kernels', 'https://evil.example/x',
    'javascript:alert(1)'
  ]) {
    assert.throws(() => apiPath(path), TypeError, path);
  }
});
