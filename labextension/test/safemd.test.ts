// The lab plugin's safe-Markdown function against the table the kernel side is tested with:
// both clients must turn each hostile answer into exactly the same Markdown.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { answerHtml } from '../src/answerhtml';
import { LiveMarkdown } from '../src/livemd';
import { codeSpans, safeMarkdown, topLevelBlocks } from '../src/safemd';

interface ICase {
  name: string;
  answer: string;
  expected: string;
  expected_html: string;
  deltas?: string[];
  image_origins?: string[];
}

const table = JSON.parse(
  readFileSync(join(__dirname, '..', '..', '..', 'tests', 'safety_cases.json'), 'utf-8')
) as { cases: ICase[] };

for (const c of table.cases) {
  test(`safe answer: ${c.name}`, () => {
    assert.equal(safeMarkdown(c.answer, c.image_origins ?? []), c.expected);
    assert.equal(answerHtml(c.answer, c.image_origins ?? []), c.expected_html);
  });

  test(`safe answer fed to the live view delta by delta shows as the whole answer: ${c.name}`, () => {
    const origins = c.image_origins ?? [];
    const whole = topLevelBlocks(safeMarkdown(c.answer, origins));
    assert.deepEqual(whole, topLevelBlocks(c.expected));
    // The case's own deltas where it has them, else the answer cut every 13 characters and every one
    const splits = [c.deltas ?? [], c.answer.match(/[\s\S]{1,13}/g) ?? [], Array.from(c.answer)].filter(d => d.length);
    for (const deltas of splits) {
      assert.equal(deltas.join(''), c.answer);
      // As mime.ts makes it (the default chunk size), and cutting at every blank line
      for (const live of [new LiveMarkdown(origins), new LiveMarkdown(origins, 1)]) {
        for (const delta of deltas) {
          live.append(delta);
        }
        assert.deepEqual(live.blocks().join('\n'), whole.join('\n'), `${deltas.length} deltas`);
      }
    }
  });
}

test('code spans follow the backtick rules', () => {
  assert.deepEqual(codeSpans('a `b` c'), [[2, 5]]);
  assert.deepEqual(codeSpans('``a ` b`` c'), [[0, 9]]);
  assert.deepEqual(codeSpans('\\`a` b'), []);
  assert.deepEqual(codeSpans('`a\\`b'), [[0, 4]]);
});

test('a partial image at the end of a growing answer is never an image', () => {
  const answer = 'See ![chart](http://127.0.0.1:8891/exfil/partial.png?secret=4';
  for (let i = 1; i <= answer.length; i++) {
    assert.ok(!safeMarkdown(answer.slice(0, i)).includes('!['));
  }
});

test('an answer cut into top-level blocks joins back to itself', () => {
  const answer = '# Title\n\nPara one\ncontinued.\n\n- a\n- b\n\n```py\nx = 1\n\ny = 2\n```\n\n| a |\n|---|\n| 1 |\n\n> quote\n\ntail';
  const blocks = topLevelBlocks(answer);
  assert.equal(blocks.join('\n'), answer);
  assert.equal(blocks.length, 7);
  assert.ok(blocks[3].startsWith('```py') && blocks[3].includes('y = 2'));
  for (const c of table.cases) {
    assert.equal(topLevelBlocks(c.expected).join('\n'), c.expected);
  }
});
