/**
 * Safe answer Markdown: a model's answer rewritten so that any Markdown renderer, trusted or not,
 * shows it as formatted text and nothing more (no script, no fetched URL, no page restyling).
 *
 * The same algorithm as `cellmage_server/safety/safe_markdown.py` (read its docstring for the rules and
 * why they are context-free); both are tested against `tests/safety_cases.json` and must give the
 * same result. Pure: markdown-it (CommonMark) only tells what is code.
 */
import MarkdownIt from 'markdown-it';

const ZWSP = '\u200b';
export const IMAGE_MARK = '\u{1F5BC}'; // 🖼

const ENTITY_START = /&(?=[#A-Za-z])/g;
const SCHEME = /(?<![a-z0-9+.-])(javascript|vbscript|livescript|data|file)(?=\\?:)/gi;
const TEX = new RegExp(
  '\\\\(?=(?:href|url|require|class|cssId|style|data|html|bbox|csname|unicode|mmlToken|mathtip|texttip|' +
    'toggle|enclose|tooltip|action|fbox|mbox|fcolorbox|definecolor|' +
    // commands that define commands: a definition outlives its answer in JupyterLab's MathJax
    'def|gdef|edef|xdef|let|newcommand|renewcommand|providecommand|newenvironment|renewenvironment|' +
    'DeclareMathOperator|empheqset)(?![A-Za-z]))',
  'g'
);
const INLINE_IMAGE = /!\[[^[\]\n\\]*\]\((https?:\/\/[^\x00-\x20)]*)/y;
const ASCII_PUNCT = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');

type Range = [number, number];

/** Every `![` becomes a link's `🖼[`, but for an inline image from an allowed origin. */
function unallowedImages(text: string, origins: readonly string[]): string {
  const prefixes = origins.map(o => o + '/');
  return text.replace(/!\[/g, (_, offset: number) => {
    INLINE_IMAGE.lastIndex = offset;
    const image = INLINE_IMAGE.exec(text);
    const url = image ? image[1].toLowerCase() : null;
    return url !== null && prefixes.some(p => url.startsWith(p)) ? '![' : IMAGE_MARK + '[';
  });
}

/** TeX link, load and style commands made inert (MathJax reads the rendered page's text). */
export function breakTex(text: string): string {
  return text.replace(TEX, '\\' + ZWSP);
}

/** The context-free rules, for text that is not code. */
export function defang(text: string, imageOrigins: readonly string[] = []): string {
  return unallowedImages(text.replace(ENTITY_START, '&amp;').split('<').join('&lt;'), imageOrigins)
    .replace(SCHEME, (_, scheme: string) => scheme + ZWSP)
    .replace(TEX, '\\' + ZWSP);
}

/** CommonMark code spans in one inline block (see code_spans in safe_markdown.py). */
export function codeSpans(text: string): Range[] {
  const spans: Range[] = [];
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text[i];
    if (c === '\\' && i + 1 < n && ASCII_PUNCT.has(text[i + 1])) {
      i += 2;
    } else if (c === '`') {
      const run = i;
      while (i < n && text[i] === '`') {
        i++;
      }
      const length = i - run;
      let j = i;
      while (j < n) {
        if (text[j] !== '`') {
          j++;
          continue;
        }
        const close = j;
        while (j < n && text[j] === '`') {
          j++;
        }
        if (j - close === length) {
          spans.push([run, j]);
          i = j;
          break;
        }
      }
    } else {
      i++;
    }
  }
  return spans;
}

/** A table row's cells, split at every unescaped `|`. */
function tableCells(line: string): Range[] {
  const cells: Range[] = [];
  let start = 0;
  let i = 0;
  while (i < line.length) {
    if (line[i] === '\\') {
      i += 2;
      continue;
    }
    if (line[i] === '|') {
      cells.push([start, i]);
      start = i + 1;
    }
    i++;
  }
  cells.push([start, line.length]);
  return cells;
}

let parser: MarkdownIt | null = null;

const LEAVES = new Set(['fence', 'code_block', 'table_open', 'paragraph_open', 'heading_open']);

/** Character ranges of `text` that a CommonMark renderer shows as code. */
export function codeRegions(text: string): Range[] {
  parser = parser ?? new MarkdownIt('commonmark').enable(['table', 'strikethrough']);
  const starts = [0];
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\n') {
      starts.push(i + 1);
    }
  }
  const ends = starts.slice(1).map(s => s - 1);
  ends.push(text.length);
  const regions: Range[] = [];
  for (const token of parser.parse(text, {})) {
    if (!token.map || !LEAVES.has(token.type)) {
      continue;
    }
    const [first, last] = token.map;
    if (token.type === 'fence' || token.type === 'code_block') {
      regions.push([starts[first], ends[last - 1]]);
    } else if (token.type === 'table_open') {
      for (let line = first; line < last; line++) {
        const base = starts[line];
        const row = text.slice(base, ends[line]);
        for (const [a, b] of tableCells(row)) {
          for (const [s, e] of codeSpans(row.slice(a, b))) {
            regions.push([base + a + s, base + a + e]);
          }
        }
      }
    } else {
      const a = starts[first];
      for (const [s, e] of codeSpans(text.slice(a, ends[last - 1]))) {
        regions.push([a + s, a + e]);
      }
    }
  }
  return regions.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
}

/** `text` with the rules applied outside `raw`; and where each raw range landed. */
function rewrite(text: string, raw: Range[], origins: readonly string[]): { out: string; landed: [Range, Range][] } {
  const out: string[] = [];
  const landed: [Range, Range][] = [];
  let pos = 0;
  let length = 0;
  for (const [a, b] of raw) {
    if (a < pos) {
      continue;
    }
    const piece = defang(text.slice(pos, a), origins);
    out.push(piece, text.slice(a, b));
    length += piece.length;
    landed.push([
      [a, b],
      [length, length + b - a]
    ]);
    length += b - a;
    pos = b;
  }
  out.push(defang(text.slice(pos), origins));
  return { out: out.join(''), landed };
}

/**
 * `text` (a model's Markdown answer) as Markdown that is safe to render as trusted.
 * `imageOrigins`: lower-case origins (`https://host[:port]`) whose inline images may load.
 */
export function safeMarkdown(text: string, imageOrigins: readonly string[] = []): string {
  text = text.replace(/\r\n?/g, '\n');
  let raw = codeRegions(text);
  // Each round can only demote code to escaped text, so this ends within raw.length + 1 rounds.
  for (let round = 0; round <= raw.length; round++) {
    const { out, landed } = rewrite(text, raw, imageOrigins);
    const resultCode = codeRegions(out);
    const covered = ([a, b]: Range) => a === b || resultCode.some(([s, e]) => s <= a && b <= e);
    const lost = landed.filter(([, where]) => !covered(where)).map(([from]) => from);
    if (lost.length === 0) {
      return out;
    }
    raw = raw.filter(r => !lost.some(l => l[0] === r[0] && l[1] === r[1]));
  }
  return defang(text, imageOrigins);
}

const SENTINEL = '\n\n\u2063'; // an invisible separator, as the first line after the answer

/**
 * `markdown` with a fenced code block it leaves open closed, so that what is appended after it
 * (a marker, an error, the status line) is not shown inside the code block (see
 * close_open_fence in safe_markdown.py).
 */
export function closeOpenFence(markdown: string): string {
  const probe = markdown + SENTINEL;
  const end = probe.length;
  if (!codeRegions(probe).some(([s, e]) => s <= end - 1 && end <= e)) {
    return markdown;
  }
  const fences = parser!.parse(markdown, {}).filter(t => t.type === 'fence' && t.level === 0);
  const closing = fences.length ? fences[fences.length - 1].markup : '```';
  return markdown.replace(/\n+$/, '') + '\n' + closing;
}

/**
 * `markdown` cut into its top-level blocks (paragraphs, headings, lists, tables, code blocks,
 * quotes), each with the blank lines after it, so that rendering them one by one shows the same.
 */
export function topLevelBlocks(markdown: string): string[] {
  parser = parser ?? new MarkdownIt('commonmark').enable(['table', 'strikethrough']);
  const lines = markdown.split('\n');
  const starts = parser
    .parse(markdown, {})
    .filter(t => t.level === 0 && t.nesting !== -1 && t.map)
    .map(t => t.map![0]);
  if (starts.length === 0) {
    return markdown ? [markdown] : [];
  }
  starts[0] = 0; // lines before the first block (blank, or link definitions) go with it
  return starts.map((start, i) => lines.slice(start, starts[i + 1] ?? lines.length).join('\n'));
}
