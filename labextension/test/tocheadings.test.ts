// An answer's headings for the table of contents: what a renderer shows of each heading, as
// plain text, hostile Markdown included; bounded; and while it streams, the headings the stored
// answer will have, so the table of contents has nothing to add at its end.
import { document } from './dom';

import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { Sanitizer } from '@jupyterlab/apputils/lib/sanitizer';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Marked } from 'marked';
import { gfmHeadingId } from 'marked-gfm-heading-id';
import { mangle } from 'marked-mangle';

import { finalMarkdown } from '../src/ending';
import { renderAnswer } from '../src/render';
import { safeMarkdown } from '../src/safemd';
import { answerHeadings, LiveHeadings, MAX_HEADINGS, MAX_TEXT } from '../src/tocheadings';

// As @jupyterlab/markedparser-extension: its two plugins, then `{ async: true, gfm: true }`.
const marked = new Marked(gfmHeadingId(), mangle());
const options = {
  sanitizer: new Sanitizer(),
  markdownParser: { render: async (source: string) => marked.parse(source, { async: true, gfm: true }) }
} as unknown as IRenderMime.IRendererOptions;

/** The headings of an answer as the page renders it (render.ts), by their text (what JupyterLab
 * reads of a heading element). */
async function shownHeadings(markdown: string): Promise<{ level: number; text: string }[]> {
  const host = document.createElement('div');
  await renderAnswer(host, markdown, options);
  return Array.from(host.querySelectorAll('h1, h2, h3, h4, h5, h6')).map(h => ({
    level: Number(h.tagName[1]),
    text: (h.textContent ?? '').replace(/\u200b/g, '').replace(/\s+/g, ' ').trim()
  }));
}

const HOSTILE = [
  '# <script>alert(1)</script>Intro',
  '## <img src=x onerror="alert(document.cookie)"> Setup <b>now</b>',
  '## See [the docs](javascript:alert(1)) and <https://evil.example/x>',
  '### ![tracker](https://evil.example/pixel.png) Pictures',
  '#### `code <b>` and **bold** &amp; &lt;tag&gt; \\# escaped',
  '##### Math $\\href{https://evil.example}{x}$ and \\(\\style{color:red}{y}\\)',
  '###### <iframe src="https://evil.example"></iframe>',
  'Setext <em>title</em>\n===',
  'Another [one](data:text/html,<script>alert(1)</script>)\n---'
].join('\n\n');

test('hostile headings, made safe, read as what the page shows of them', async () => {
  const safe = safeMarkdown(HOSTILE);
  const headings = answerHeadings(safe);
  assert.equal(headings.length, 9);
  assert.deepEqual(headings, await shownHeadings(safe));
});

test('a heading is its words only: no tags, no link targets, no image sources', () => {
  // Raw Markdown, as an untrusted notebook may carry under this extension's output type.
  const texts = answerHeadings(HOSTILE).map(h => h.text);
  assert.deepEqual(texts.slice(0, 3), ['alert(1)Intro', 'Setup now', 'See the docs and https://evil.example/x']);
  assert.equal(texts[3], 'tracker Pictures');
  assert.equal(texts[4], 'code <b> and bold & <tag> # escaped');
  assert.equal(texts[6], '');
  for (const text of texts) {
    assert.doesNotMatch(text, /<(script|img|iframe|em)|onerror|javascript:|pixel\.png|data:/);
  }
});

test('invisible and control characters do not reach the table of contents', () => {
  const [heading] = answerHeadings('## a\u202eb\u200bc\u2066d\u0007e\u2028f\n');
  assert.equal(heading.text, 'abcd e f');
});

test('a very long heading is cut, and so is the number of headings', () => {
  const [long] = answerHeadings('## ' + 'word '.repeat(5000) + '\n');
  assert.equal(long.text.length, MAX_TEXT);
  assert.ok(long.text.endsWith('\u2026'));
  const many = answerHeadings(Array.from({ length: MAX_HEADINGS + 100 }, (_, i) => `### H${i}`).join('\n\n'));
  assert.equal(many.length, MAX_HEADINGS);
  assert.equal(many[MAX_HEADINGS - 1].text, `H${MAX_HEADINGS - 1}`);
});

test('only what CommonMark makes a heading: not in code, not a hashtag; nested ones count', () => {
  const markdown = [
    '```bash\n# a comment\n```',
    '    # indented code',
    '#hashtag and #2',
    '> ## Quoted',
    '- ### In a list',
    '| # | col |\n|---|---|\n| # | x |',
    '# Real'
  ].join('\n\n');
  assert.deepEqual(answerHeadings(markdown), [
    { level: 2, text: 'Quoted' },
    { level: 3, text: 'In a list' },
    { level: 1, text: 'Real' }
  ]);
});

const SECTION = (i: number) =>
  `## ${i}. Part <${i}> with \`code\`\n\nSome text with a [link](https://example.com/${i}) and $x_${i}$.\n\n` +
  `### ${i}.1 What to check\n\n- one\n- two\n\n| a | b |\n|---|---|\n| ${i} | x |\n\n` +
  `\`\`\`python\n# not a heading\ndef f(x):\n\n    return x < ${i}\n\`\`\`\n\nSetext ${i}\n---\n\n`;

test('while an answer streams, its headings so far are the ones the stored answer will have', () => {
  const text = Array.from({ length: 30 }, (_, i) => SECTION(i)).join('');
  const stored = answerHeadings(finalMarkdown(text, { model: 'm', usage: null, elapsed_ms: 1 } as any));
  assert.equal(stored.length, 90);
  for (const size of [1, 13, 100, 5000]) {
    const live = new LiveHeadings();
    let so = '';
    let seen = 0;
    for (let i = 0; i < text.length; i += size) {
      so += text.slice(i, i + size);
      const headings = live.update(so);
      assert.ok(headings.length >= seen, 'headings are only added');
      assert.deepEqual(headings, stored.slice(0, headings.length), `deltas of ${size}`);
      seen = headings.length;
    }
    assert.ok(seen >= stored.length - 1, `all but the last block's, deltas of ${size}`);
  }
});

test('a heading still being written is not listed', () => {
  const live = new LiveHeadings();
  assert.deepEqual(live.update('Intro.\n\n## Half a hea'), []);
  assert.deepEqual(live.update('Intro.\n\n## Half a heading\n\nText'), [{ level: 2, text: 'Half a heading' }]);
});
