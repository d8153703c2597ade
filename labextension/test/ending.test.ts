// The lab plugin's answer endings against the table the kernel magic is tested with: both clients
// store exactly the same Markdown for the same answer and ending, and show a refused request alike.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { ANSWER_MIME } from '../src/answermime';
import { answerBundle, answerBundleInSteps, finalMarkdown, IEnding, problemBundle } from '../src/ending';

const table = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'tests', 'ending_cases.json'), 'utf-8')) as {
  cases: { name: string; text: string; ending: IEnding; expected: string; expected_html: string }[];
  problems: { name: string; message: string; expected: string; expected_html: string }[];
};

for (const c of table.cases) {
  test(`ending: ${c.name}`, () => {
    assert.equal(finalMarkdown(c.text, c.ending), c.expected);
    const bundle = answerBundle(c.text, c.ending);
    assert.equal(bundle['text/html'], c.expected_html);
    assert.equal(bundle[ANSWER_MIME].failed ?? false, Boolean(c.ending.error_code) && c.ending.error_code !== 'cancelled');
    assert.equal(bundle[ANSWER_MIME].stopped ?? false, Boolean(c.ending.stopped)); // the kernel's line is then not shown
  });
}

for (const c of table.problems) {
  test(`problem: ${c.name}`, () => {
    const bundle = problemBundle(c.message);
    assert.deepEqual(bundle[ANSWER_MIME], { markdown: c.expected, problem: true });
    assert.equal(bundle['text/html'], c.expected_html);
    assert.equal(bundle['text/plain'], c.message);
  });
}

test('the answer built in steps is the answer built at once', async () => {
  for (const [text, e] of [
    ['# T\n\n```python\nx = 1 < 2\n', { model: 'm', stopped: true, error_code: 'cancelled' }],
    ['half', { model: 'm', error_code: 'upstream', error_message: 'the connection broke (x)' }]
  ] as [string, IEnding][]) {
    assert.deepEqual(await answerBundleInSteps(text, e, [], 'abc'), answerBundle(text, e, [], 'abc'));
  }
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
