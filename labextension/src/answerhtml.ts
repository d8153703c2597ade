/**
 * The stored answer as HTML, the form every renderer shows safely: one parser (markdown-it, raw
 * HTML off) writes every tag and escapes every text and attribute. The same as
 * cellmage_server/safety/answer_html.py (read its docstring); both are tested against
 * tests/safety_cases.json and must give the same HTML.
 */
import MarkdownIt from 'markdown-it';

import { breakTex, IMAGE_MARK } from './safemd';

const SAFE_LINK = /^(https?:|mailto:)/;
const MATH: [string, string][] = [
  ['$$', '$$'],
  ['$', '$'],
  ['\\(', '\\)'],
  ['\\[', '\\]']
];

type Token = ReturnType<MarkdownIt['parse']>[number];

/** An image's alt text: its inline tokens' text, without markup. */
function plain(tokens: Token[]): string {
  return tokens
    .map(t =>
      ['text', 'text_special', 'code_inline', 'math_text'].includes(t.type)
        ? t.content
        : t.type === 'softbreak' || t.type === 'hardbreak'
          ? '\n'
          : t.type === 'image'
            ? plain(t.children || [])
            : ''
    )
    .join('');
}

/** Inline math as one text token, so emphasis and escapes do not touch it. */
function math(state: MarkdownIt.StateInline, silent: boolean): boolean {
  const { src, pos, posMax: end } = state;
  for (const [opening, closing] of MATH) {
    if (src.startsWith(opening, pos)) {
      // Where each closing delimiter was last looked for in vain: no later opening of its kind
      // can close either, so many unclosed ones cost one scan, not one each (quadratic).
      // JSON-free bookkeeping on this inline block's own state object: end -> delimiter -> position
      const all: Map<number, Map<string, number>> = ((state as any).cellmageMissing ??= new Map());
      const missing = all.get(end) ?? all.set(end, new Map()).get(end)!;
      if (pos >= (missing.get(closing) ?? end + 1)) {
        return false;
      }
      let found = src.indexOf(closing, pos + opening.length);
      if (found + closing.length > end) {
        found = -1;
      }
      if (found === -1) {
        missing.set(closing, Math.min(missing.get(closing) ?? end + 1, pos));
      }
      if (found <= pos + opening.length) {
        return false;
      }
      if (!silent) {
        state.push('math_text', '', 0).content = src.slice(pos, found + closing.length);
      }
      state.pos = found + closing.length;
      return true;
    }
  }
  return false;
}

const renderers = new Map<string, MarkdownIt>();

function renderer(imageOrigins: readonly string[]): MarkdownIt {
  const key = imageOrigins.join(' ');
  let md = renderers.get(key);
  if (md) {
    return md;
  }
  md = new MarkdownIt('commonmark', { html: false }).enable(['table', 'strikethrough']);
  const escape = md.utils.escapeHtml;
  const prefixes = imageOrigins.map(o => o + '/');
  md.validateLink = url => SAFE_LINK.test(url.trim().toLowerCase());
  md.inline.ruler.before('escape', 'cellmage_math', math);
  md.renderer.rules.text = (tokens, idx) => escape(breakTex(tokens[idx].content));
  md.renderer.rules.math_text = md.renderer.rules.text;
  md.renderer.rules.link_open = (tokens, idx, options, env, self) => {
    tokens[idx].attrSet('target', '_blank');
    tokens[idx].attrSet('rel', 'noopener noreferrer');
    return self.renderToken(tokens, idx, options);
  };
  md.renderer.rules.image = (tokens, idx) => {
    const src = escape(tokens[idx].attrGet('src') || '');
    const alt = escape(breakTex(plain(tokens[idx].children || [])));
    if (prefixes.some(p => src.toLowerCase().startsWith(p))) {
      return `<img src="${src}" alt="${alt}" referrerpolicy="no-referrer">`;
    }
    return `<a href="${src}" target="_blank" rel="noopener noreferrer">${IMAGE_MARK} ${alt}</a>`;
  };
  renderers.set(key, md);
  return md;
}

/** `markdown` (a model's answer, and our own ending) as HTML that runs and fetches nothing. */
export function answerHtml(markdown: string, imageOrigins: readonly string[] = []): string {
  return renderer(imageOrigins).render(markdown.replace(/\r\n?/g, '\n'));
}
