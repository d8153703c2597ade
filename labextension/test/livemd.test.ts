// The live view's incremental Markdown: the same blocks as processing the whole text, whatever
// the deltas, in the usual answers; and every chunk made safe on its own.
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { LiveMarkdown } from '../src/livemd';
import { safeMarkdown, topLevelBlocks } from '../src/safemd';

const SECTION = (i: number) =>
  `## Part ${i}\n\nSome text with \`code\` and a [link](https://example.com/${i}).\n\n- one\n- two\n\n` +
  `| a | b |\n|---|---|\n| ${i} | x |\n\n\`\`\`python\ndef f(x):\n\n    return x < ${i}\n\`\`\`\n\n`;

function fed(text: string, size: number, minChunk = 200): LiveMarkdown {
  const live = new LiveMarkdown([], minChunk);
  for (let i = 0; i < text.length; i += size) {
    live.append(text.slice(i, i + size));
  }
  return live;
}

test('a usual answer gives the blocks of the whole text, however it is split', () => {
  const text = Array.from({ length: 12 }, (_, i) => SECTION(i)).join('');
  const whole = topLevelBlocks(safeMarkdown(text)).map(b => b.trimEnd());
  for (const size of [1, 7, 64, 1000]) {
    // (A chunk cut at the very end of the text so far lacks the blank line's newline.)
    assert.deepEqual(fed(text, size).blocks().map(b => b.trimEnd()), whole, `deltas of ${size}`);
  }
});

test('a blank line inside a code fence does not cut the chunk', () => {
  const code = '```\n' + 'x = 1\n\n'.repeat(100) + '```\n\nafter\n';
  const blocks = fed(code, 5, 50).blocks();
  assert.equal(blocks.filter(b => b.startsWith('```')).length, 1);
  assert.ok(blocks[0].includes('x = 1\n\nx = 1'));
});

test('finished chunks are not processed again', () => {
  const live = fed(Array.from({ length: 8 }, (_, i) => SECTION(i)).join(''), 50);
  const before = live.blocks();
  live.append('more ');
  const after = live.blocks();
  assert.ok(before.slice(0, -1).every((b, i) => b === after[i])); // the same strings
});

test('a hostile answer after a finished chunk, or cut at its own blank lines, is made safe exactly as on its own', () => {
  const table = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'tests', 'safety_cases.json'), 'utf-8'));
  const filler = 'Some plain words here.\n\n'.repeat(120); // cut off as chunks before the answer
  let checked = 0;
  for (const c of table.cases) {
    const origins: string[] = c.image_origins ?? [];
    const answer = c.answer as string;
    // minChunk 1: every blank line of the answer (the reference definitions' among them) ends a chunk
    for (const minChunk of [2000, 1]) {
      const live = new LiveMarkdown(origins, minChunk);
      for (const part of [filler, ...(answer.match(/[\s\S]{1,13}/g) ?? [])]) {
        live.append(part);
      }
      // The answer's part of what is shown is the table's safe Markdown of that answer
      assert.ok(live.blocks().join('\n').trimEnd().endsWith(c.expected.trimEnd()), `${c.name} (chunks of ${minChunk})`);
    }
    checked++;
  }
  assert.equal(checked, table.cases.length);
});
