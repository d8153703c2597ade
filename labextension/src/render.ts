/**
 * Rendering an answer: its (already safe) Markdown through JupyterLab's own Markdown parser (so
 * code highlighting and math look as in any notebook), then JupyterLab's sanitizer as for an
 * untrusted output, whatever the cell's trust, then a last pass over the DOM while it is still inert
 * (in a <template>, where nothing loads): no element that loads, runs or restyles survives, images
 * become links, and links open in a new tab without an opener or a referrer.
 *
 * Math: before MathJax reads the text, every TeX command that links, loads, restyles or defines
 * commands is broken in it (the same rule as safe Markdown, applied here again because a notebook
 * from elsewhere may carry Markdown that never went through the rewrite). After MathJax typesets,
 * the elements it made (`mjx-*`, and the MathML it adds for screen readers) keep the layout it gave
 * them (the inline `style` that raises a superscript, scales the math to the text), reduced to
 * layout properties with plain values; nothing else may carry a style. So an answer's math looks
 * as the same math in a Markdown cell.
 *
 * The answer's top-level blocks are the host's own children, as in a Markdown cell, so JupyterLab's
 * styles (`.jp-RenderedHTMLCommon > pre` and its kin) lay them out the same way.
 *
 * Rendering never trusts the Markdown it is given: a notebook from elsewhere may carry this
 * extension's answer type with anything in it.
 */
import { removeMath, replaceMath } from '@jupyterlab/rendermime';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { breakTex, topLevelBlocks } from './safemd';

/** Elements whose content may show, as text. */
const UNWRAP = new Set(['form', 'button', 'select', 'option', 'textarea', 'label', 'details', 'summary', 'dialog']);
/** Elements that load, run or restyle something: removed whole. */
const REMOVE = new Set([
  'script', 'style', 'iframe', 'frame', 'frameset', 'object', 'embed', 'applet', 'link', 'meta', 'base',
  'input', 'svg', 'math', 'video', 'audio', 'source', 'track', 'picture', 'portal', 'template', 'noscript', 'canvas'
]);
/** Attributes that load, run, navigate or restyle. */
const ATTRIBUTES = new Set([
  'style', 'src', 'srcset', 'srcdoc', 'poster', 'background', 'action', 'formaction', 'ping', 'data', 'usemap',
  'lowsrc', 'dynsrc', 'xlink:href', 'data-commandlinker-command', 'data-commandlinker-args', 'target', 'rel'
]);
const SAFE_LINK = /^(https?:|mailto:)/i;

/** The layout properties MathJax's CHTML output sets inline, and nothing that could load or
 * reach past the math: no url(), no var(), no fixed or absolute position. */
const MATH_PROPERTIES = new Set([
  'vertical-align', 'font-size', 'position', 'top', 'bottom', 'left', 'right', 'width', 'height', 'min-width',
  'max-width', 'min-height', 'margin', 'margin-top', 'margin-bottom', 'margin-left', 'margin-right', 'padding',
  'padding-top', 'padding-bottom', 'padding-left', 'padding-right', 'border', 'border-top', 'border-bottom',
  'border-left', 'border-right', 'border-width', 'border-style', 'border-color', 'border-top-width',
  'border-bottom-width', 'border-left-width', 'border-right-width', 'color', 'background-color', 'line-height',
  'text-align', 'display', 'letter-spacing', 'font-style', 'font-weight'
]);
const MATH_VALUE = /^[-+.,%#()\w\s]*$/;
const MATH_VALUE_WORDS = /\b(url|image|image-set|expression|var|attr|env|element|paint|cross-fade)\s*\(/i;
/** Attributes MathJax puts on the MathML it adds for screen readers. */
const MATHML_ATTRIBUTES = new Set([
  'xmlns', 'display', 'mathvariant', 'stretchy', 'fence', 'separator', 'lspace', 'rspace', 'accent', 'accentunder',
  'linethickness', 'columnalign', 'rowalign', 'columnspacing', 'rowspacing', 'symmetric', 'largeop', 'movablelimits',
  'minsize', 'maxsize', 'form', 'data-mjx-texclass', 'data-mjx-variant', 'data-mjx-alternate', 'scriptlevel',
  'displaystyle', 'width', 'height', 'depth', 'voffset'
]);
const MATHML_NS = 'http://www.w3.org/1998/Math/MathML';

/** Origins whose images may load (the server's `image_origins`; none until it says). */
let imageOrigins: readonly string[] = [];

export function setImageOrigins(origins: readonly string[]): void {
  imageOrigins = origins.map(o => o.toLowerCase());
}

export function allowedImageOrigins(): readonly string[] {
  return imageOrigins;
}

function allowedImage(src: string | null): boolean {
  const url = src?.trim().toLowerCase() ?? '';
  return imageOrigins.some(origin => url.startsWith(origin + '/'));
}

function safeHref(href: string | null): string | null {
  return href !== null && SAFE_LINK.test(href.trim()) ? href.trim() : null;
}

/** A link that opens in a new tab, sending neither an opener nor a referrer. */
function external(anchor: HTMLAnchorElement, href: string): void {
  anchor.setAttribute('href', href);
  anchor.setAttribute('target', '_blank');
  anchor.setAttribute('rel', 'noopener noreferrer');
}

/** The declarations of a MathJax element's inline style that only lay the math out; '' for none. */
export function mathStyle(style: string): string {
  const kept: string[] = [];
  for (const declaration of style.split(';')) {
    const colon = declaration.indexOf(':');
    if (colon === -1) {
      continue;
    }
    const property = declaration.slice(0, colon).trim().toLowerCase();
    const value = declaration.slice(colon + 1).trim();
    const plain = MATH_VALUE.test(value) && !MATH_VALUE_WORDS.test(value) && !/!important/i.test(value);
    const placed = property !== 'position' || /^(relative|static)$/i.test(value);
    if (MATH_PROPERTIES.has(property) && value && plain && placed) {
      kept.push(`${property}: ${value}`);
    }
  }
  return kept.join('; ');
}

/** An element MathJax made while typesetting: its own `mjx-*` elements, and the MathML of its
 * assistive copy. (Before typesetting none may exist: `harden` removes them.) */
function typesetElement(element: Element): 'mjx' | 'mathml' | null {
  if (element.localName.startsWith('mjx-')) {
    return 'mjx';
  }
  if (element.namespaceURI === MATHML_NS || element.localName === 'math') {
    return element.closest('mjx-assistive-mml') !== null ? 'mathml' : null;
  }
  return null;
}

export interface IHardenOptions {
  /** The math typesetter has run on `root`: keep what it made (its layout styles, its MathML). */
  typeset?: boolean;
}

/** Apply the DOM rules to `root` (inert, or already rendered: the rules are the same). */
export function harden(root: DocumentFragment | HTMLElement, options: IHardenOptions = {}): void {
  for (const element of Array.from(root.querySelectorAll('*'))) {
    if (!element.isConnected && !root.contains(element)) {
      continue; // inside an element removed above
    }
    const tag = element.localName;
    const made = options.typeset ? typesetElement(element) : null;
    if (made === 'mathml') {
      for (const { name } of Array.from(element.attributes)) {
        if (!MATHML_ATTRIBUTES.has(name)) {
          element.removeAttribute(name);
        }
      }
      continue;
    }
    if (made === null && (REMOVE.has(tag) || tag.startsWith('mjx-'))) {
      element.remove(); // (math elements exist only as MathJax makes them, after typesetting)
      continue;
    }
    if (tag === 'img' && allowedImage(element.getAttribute('src'))) {
      for (const { name } of Array.from(element.attributes)) {
        if (!['src', 'alt', 'title'].includes(name)) {
          element.removeAttribute(name);
        }
      }
      element.setAttribute('referrerpolicy', 'no-referrer');
      continue;
    }
    if (tag === 'img') {
      // Never fetched: a link the user may follow instead.
      const link = element.ownerDocument.createElement('a');
      const href = safeHref(element.getAttribute('src'));
      link.textContent = `\u{1F5BC} ${element.getAttribute('alt') || 'image'}`;
      link.className = 'jp-cellmage-BlockedImage';
      if (href) {
        external(link, href);
      }
      element.replaceWith(link);
      continue;
    }
    const style = made === 'mjx' ? mathStyle(element.getAttribute('style') ?? '') : '';
    for (const { name } of Array.from(element.attributes)) {
      if (name.startsWith('on') || ATTRIBUTES.has(name) || (name === 'href' && tag !== 'a')) {
        element.removeAttribute(name);
      }
    }
    if (style) {
      element.setAttribute('style', style);
    }
    if (tag === 'a') {
      const href = safeHref(element.getAttribute('href'));
      if (href) {
        external(element as HTMLAnchorElement, href);
      } else {
        element.removeAttribute('href');
      }
    }
    if (UNWRAP.has(tag)) {
      element.replaceWith(...Array.from(element.childNodes));
    }
  }
}

/** Tags whose text MathJax does not read (its `skipHtmlTags`). */
const NOT_MATH = new Set(['pre', 'code', 'script', 'noscript', 'style', 'textarea', 'annotation', 'annotation-xml']);

/** Break the TeX commands that link, load, restyle or define commands in every text MathJax
 * will read under `root`. */
export function inertTex(root: DocumentFragment | HTMLElement): void {
  const walker = root.ownerDocument!.createTreeWalker(root, 4 /* NodeFilter.SHOW_TEXT */);
  for (let node = walker.nextNode() as Text | null; node !== null; node = walker.nextNode() as Text | null) {
    let parent = node.parentElement;
    while (parent !== null && !NOT_MATH.has(parent.localName) && parent !== root) {
      parent = parent.parentElement;
    }
    if (parent !== null && NOT_MATH.has(parent.localName)) {
      continue;
    }
    const broken = breakTex(node.data);
    if (broken !== node.data) {
      node.data = broken;
    }
  }
}

/** `markdown` as an inert fragment: parsed, sanitized and hardened, not yet in the page. */
async function fragment(markdown: string, options: IRenderMime.IRendererOptions): Promise<DocumentFragment> {
  const template = document.createElement('template');
  if (options.markdownParser) {
    const parts = removeMath(markdown);
    const html = replaceMath(await options.markdownParser.render(parts.text), parts.math);
    template.innerHTML = options.sanitizer.sanitize(html);
  } else {
    const pre = document.createElement('pre');
    pre.textContent = markdown;
    template.content.append(pre);
  }
  harden(template.content);
  inertTex(template.content);
  return template.content;
}

/** Typeset the math of these top-level nodes (already in the page) and keep only what MathJax made. */
async function typeset(nodes: readonly Node[], options: IRenderMime.IRendererOptions): Promise<void> {
  if (!options.latexTypesetter) {
    return;
  }
  for (const node of nodes) {
    if (node.nodeType === 1 /* an element */ && /[$\\]/.test(node.textContent ?? '')) {
      await options.latexTypesetter.typeset(node as HTMLElement);
      harden(node as HTMLElement, { typeset: true }); // typesetting made new elements: the same rules hold for them
    }
  }
}

/** What the renderer adds to rendered blocks of its own (code-block actions): called with each
 * block's top-level nodes once they are rendered and typeset. */
export type Decorate = (nodes: readonly Node[]) => void;

/** Render `markdown` into `host` (replacing what it held). */
export async function renderAnswer(
  host: HTMLElement,
  markdown: string,
  options: IRenderMime.IRendererOptions,
  decorate?: Decorate
): Promise<void> {
  const nodes = Array.from((await fragment(markdown, options)).childNodes);
  host.replaceChildren(...nodes);
  await typeset(nodes, options);
  decorate?.(nodes);
}

interface IBlock {
  source: string;
  nodes: ChildNode[];
}

/**
 * A growing answer rendered block by block: the top-level blocks that did not change since the
 * last render (a closed code fence, a finished paragraph, list or table) keep their DOM, with its
 * highlighting and typeset math; only the blocks from the first change on (in practice the last,
 * growing one) are rendered again. So each update costs about the size of the tail, not of the
 * whole answer. A block's nodes are the host's own children (no wrapper), before `end` if given.
 */
export class BlockRenderer {
  private _blocks: IBlock[] = [];
  private _next: (() => string[]) | null = null;
  private _running: Promise<void> | null = null;

  constructor(
    private readonly _host: HTMLElement,
    private readonly _options: IRenderMime.IRendererOptions,
    private readonly _decorate?: Decorate,
    /** Where blocks go: before this child of the host (null: at its end). */
    private readonly _end: () => Node | null = () => null
  ) {}

  /** Show `markdown`. Renders never overlap: one asked for meanwhile waits, and only the latest
   * of those is rendered (so a render slower than the updates still shows progress). */
  render(markdown: string): Promise<void> {
    return this.renderBlocks(() => topLevelBlocks(markdown));
  }

  /** Show these top-level blocks (a function: computed only when their render starts). */
  renderBlocks(blocks: () => string[]): Promise<void> {
    this._next = blocks;
    this._running =
      this._running ??
      (async () => {
        try {
          while (this._next !== null) {
            const next = this._next;
            this._next = null;
            await this._render(next());
          }
        } finally {
          this._running = null;
        }
      })();
    return this._running;
  }

  /** Take over the blocks another renderer of the same answer shows (its output was just replaced
   * by this one's): they move here instead of being rendered again. */
  adopt(other: BlockRenderer): void {
    if (this._blocks.length || this._running || other._running) {
      return; // mid-render: render afresh instead
    }
    this._blocks = other._blocks;
    other._blocks = [];
    for (const block of this._blocks) {
      this._place(block.nodes);
    }
  }

  private _place(nodes: readonly Node[]): void {
    const end = this._end();
    for (const node of nodes) {
      this._host.insertBefore(node, end);
    }
  }

  private async _render(sources: string[]): Promise<void> {
    let kept = 0;
    while (kept < sources.length - 1 && kept < this._blocks.length && this._blocks[kept].source === sources[kept]) {
      kept++; // every block but the last may be kept: the last may still grow
    }
    // Past the first change, blocks whose source is unchanged are moved, not rendered again (the
    // stored answer, parsed whole at the end, repeats the blocks the live view showed).
    const spare = new Map<string, ChildNode[][]>();
    for (const old of this._blocks.splice(kept)) {
      spare.set(old.source, [...(spare.get(old.source) ?? []), old.nodes]);
    }
    const fresh: (IBlock & { rendered: boolean })[] = [];
    for (const [i, source] of sources.slice(kept).entries()) {
      const reused = kept + i < sources.length - 1 ? spare.get(source)?.shift() : undefined;
      if (reused) {
        fresh.push({ source, nodes: reused, rendered: false });
        continue;
      }
      const nodes = Array.from((await fragment(source, this._options)).childNodes);
      fresh.push({ source, nodes, rendered: true });
    }
    for (const nodes of spare.values()) {
      nodes.flat().forEach(node => node.remove());
    }
    for (const block of fresh) {
      this._place(block.nodes); // in order: a reused node moves to its place
      this._blocks.push({ source: block.source, nodes: block.nodes });
      if (block.rendered) {
        await typeset(block.nodes, this._options);
        this._decorate?.(block.nodes);
      }
    }
  }
}
