// The lab plugin's answer endings against the table the kernel magic is tested with: both clients
// store exactly the same Markdown for the same answer and ending.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { answerBundle, answerBundleInSteps, finalMarkdown, IEnding } from '../src/ending';

const table = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'tests', 'ending_cases.json'), 'utf-8')) as {
  cases: { name: string; text: string; ending: IEnding; expected: string; expected_html: string }[];
};

for (const c of table.cases) {
  test(`ending: ${c.name}`, () => {
    assert.equal(finalMarkdown(c.text, c.ending), c.expected);
    assert.equal(answerBundle(c.text, c.ending)['text/html'], c.expected_html);
  });
}

test('the answer built in steps is the answer built at once', async () => {
  const text = '# T\n\n```python\nx = 1 < 2\n';
  const e = { model: 'm', stopped: true, error_code: 'cancelled' };
  assert.deepEqual(await answerBundleInSteps(text, e, [], 'abc'), answerBundle(text, e, [], 'abc'));
});

import { contextSummary, IContextItem } from '../src/ending';

const summaries = (
  JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'tests', 'ending_cases.json'), 'utf-8')) as {
    context_summaries: { report: IContextItem[]; expected: string }[];
  }
).context_summaries;

for (const c of summaries) {
  test(`what context went: ${c.expected || 'none'}`, () => {
    assert.equal(contextSummary(c.report), c.expected);
  });
}
