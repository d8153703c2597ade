/**
 * An answer's headings, for JupyterLab's table of contents (toc.ts): read from the safe Markdown
 * this extension already has, as plain text, instead of JupyterLab's way (sanitizing the output's
 * whole text/html again and parsing it in the page). And, while an answer streams, the headings
 * of the text so far, so that the table of contents grows with the answer and has nothing left
 * to add when it ends: adding 43 entries at once was the longest task at the end of a 60 KB
 * answer (each entry is a web component whose setup costs 2–3 ms).
 *
 * A heading's text is untrusted: only its words are kept (markup, HTML and link targets dropped),
 * as a string that JupyterLab shows as text. Pure: no DOM.
 */
import MarkdownIt from 'markdown-it';

import { LiveMarkdown } from './livemd';

export interface IAnswerHeading {
  text: string;
  level: number;
}

/** The most headings taken from one answer, and the longest text of one (characters). */
export const MAX_HEADINGS = 500;
export const MAX_TEXT = 200;

type Token = ReturnType<MarkdownIt['parse']>[number];

let blocks: MarkdownIt | null = null;
let inline: MarkdownIt | null = null;

/** Blocks only: a heading's own inline text is parsed alone, the rest of the answer never is. */
function blockParser(): MarkdownIt {
  if (blocks === null) {
    blocks = new MarkdownIt('commonmark').enable(['table', 'strikethrough']);
    blocks.core.ruler.disable(['inline', 'text_join']);
  }
  return blocks;
}

/** What a renderer shows of inline tokens, as text: no tags, no URLs. */
function words(tokens: Token[]): string {
  return tokens
    .map(t =>
      ['text', 'text_special', 'code_inline'].includes(t.type)
        ? t.content
        : t.type === 'softbreak' || t.type === 'hardbreak'
          ? ' '
          : t.type === 'image'
            ? words(t.children || [])
            : '' // html_inline and the open/close tokens of emphasis and links
    )
    .join('');
}

/** Math delimiters that JupyterLab's Markdown rendering keeps apart (removeMath), as in a cell. */
const MATH: [string, string][] = [
  ['$$', '$$'],
  ['$', '$']
];

/** Math as its TeX, as the page shows it before typesetting: escapes and emphasis do not touch it. */
function math(state: MarkdownIt.StateInline, silent: boolean): boolean {
  for (const [opening, closing] of MATH) {
    if (state.src.startsWith(opening, state.pos)) {
      const found = state.src.indexOf(closing, state.pos + opening.length);
      if (found <= state.pos + opening.length || found + closing.length > state.posMax) {
        return false;
      }
      if (!silent) {
        state.push('text', '', 0).content = state.src.slice(state.pos, found + closing.length);
      }
      state.pos = found + closing.length;
      return true;
    }
  }
  return false;
}

function inlineParser(): MarkdownIt {
  if (inline === null) {
    inline = new MarkdownIt('commonmark').enable(['strikethrough']);
    inline.inline.ruler.before('escape', 'cellmage_math', math);
    // Only a link's text shows here, so any target will do (the page shows unsafe ones as text).
    inline.validateLink = () => true;
  }
  return inline;
}

/** A heading's inline Markdown as one line of plain text, at most MAX_TEXT characters. */
export function headingText(markdown: string): string {
  // A cut well past what shows bounds the work on a hostile heading (math is looked for once per
  // opening delimiter).
  const source = markdown.length > 4 * MAX_TEXT ? markdown.slice(0, 4 * MAX_TEXT) : markdown;
  const text = words(inlineParser().parseInline(source, {})[0]?.children || [])
    // Invisible and direction-changing characters go; control characters and line breaks are spaces.
    .replace(/[\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g, '')
    // eslint-disable-next-line no-control-regex
    .replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > MAX_TEXT ? text.slice(0, MAX_TEXT - 1) + '\u2026' : text;
}

/** The headings of `markdown` (an answer's safe Markdown), in order, nested ones included. */
export function answerHeadings(markdown: string): IAnswerHeading[] {
  const headings: IAnswerHeading[] = [];
  const tokens = blockParser().parse(markdown, {});
  for (let i = 0; i < tokens.length && headings.length < MAX_HEADINGS; i++) {
    if (tokens[i].type === 'heading_open') {
      const content = tokens[i + 1]?.type === 'inline' ? tokens[i + 1].content : '';
      headings.push({ level: Number(tokens[i].tag.slice(1)), text: headingText(content) });
    }
  }
  return headings;
}

/** The headings of a streaming answer's text so far, in time linear in its length: its safe
 * blocks as the live view shows them (livemd.ts), each parsed once. The last block is left out:
 * it may still grow (a heading line half written). */
export class LiveHeadings {
  private readonly _markdown: LiveMarkdown;
  private readonly _known = new Map<string, IAnswerHeading[]>();

  constructor(imageOrigins: readonly string[] = []) {
    this._markdown = new LiveMarkdown(imageOrigins);
  }

  /** `text`: the whole answer so far (it only grows). */
  update(text: string): IAnswerHeading[] {
    this._markdown.append(text.slice(this._markdown.text.length));
    const headings: IAnswerHeading[] = [];
    for (const block of this._markdown.blocks().slice(0, -1)) {
      let found = this._known.get(block);
      if (found === undefined) {
        found = block.includes('#') || /\n {0,3}(=+|-+)[ \t]*(\n|$)/.test(block) ? answerHeadings(block) : [];
        this._known.set(block, found);
      }
      headings.push(...found);
      if (headings.length >= MAX_HEADINGS) {
        return headings.slice(0, MAX_HEADINGS);
      }
    }
    return headings;
  }
}

/** Whether two lists of headings show the same. */
export function sameHeadings(a: readonly IAnswerHeading[], b: readonly IAnswerHeading[]): boolean {
  return a.length === b.length && a.every((h, i) => h.level === b[i].level && h.text === b[i].text);
}
