/**
 * Rendering an answer: its (already safe) Markdown through JupyterLab's own Markdown parser (so
 * code highlighting and math look as in any notebook), then JupyterLab's sanitizer as for an
 * untrusted output, whatever the cell's trust, then a last pass over the DOM while it is still inert
 * (in a <template>, where nothing loads): no element that loads, runs or restyles survives, images
 * become links, and links open in a new tab without an opener or a referrer.
 *
 * Rendering never trusts the Markdown it is given: a notebook from elsewhere may carry this
 * extension's answer type with anything in it.
 */
import { removeMath, replaceMath } from '@jupyterlab/rendermime';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { topLevelBlocks } from './safemd';

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

/** Apply the DOM rules to `root` (inert, or already rendered: the rules are the same). */
export function harden(root: DocumentFragment | HTMLElement): void {
  for (const element of Array.from(root.querySelectorAll('*'))) {
    const tag = element.localName;
    if (REMOVE.has(tag)) {
      element.remove();
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
    for (const { name } of Array.from(element.attributes)) {
      if (name.startsWith('on') || ATTRIBUTES.has(name)) {
        element.removeAttribute(name);
      }
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
  return template.content;
}

async function typeset(node: HTMLElement, options: IRenderMime.IRendererOptions): Promise<void> {
  if (options.latexTypesetter) {
    await options.latexTypesetter.typeset(node);
    harden(node); // typesetting made new elements: the same rules hold for them
  }
}

/** Render `markdown` into `host` (replacing what it held). */
export async function renderAnswer(
  host: HTMLElement,
  markdown: string,
  options: IRenderMime.IRendererOptions
): Promise<void> {
  host.replaceChildren(await fragment(markdown, options));
  await typeset(host, options);
}

/**
 * A growing answer rendered block by block: the top-level blocks that did not change since the
 * last render (a closed code fence, a finished paragraph, list or table) keep their DOM, with its
 * highlighting and typeset math; only the blocks from the first change on (in practice the last,
 * growing one) are rendered again. So each update costs about the size of the tail, not of the
 * whole answer.
 */
export class BlockRenderer {
  private _blocks: { source: string; node: HTMLElement }[] = [];
  private _next: (() => string[]) | null = null;
  private _running: Promise<void> | null = null;

  constructor(
    private readonly _host: HTMLElement,
    private readonly _options: IRenderMime.IRendererOptions
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
      this._host.append(block.node);
    }
  }

  private async _render(sources: string[]): Promise<void> {
    let kept = 0;
    while (kept < sources.length - 1 && kept < this._blocks.length && this._blocks[kept].source === sources[kept]) {
      kept++; // every block but the last may be kept: the last may still grow
    }
    // Past the first change, blocks whose source is unchanged are moved, not rendered again (the
    // stored answer, parsed whole at the end, repeats the blocks the live view showed).
    const spare = new Map<string, HTMLElement[]>();
    for (const old of this._blocks.splice(kept)) {
      spare.set(old.source, [...(spare.get(old.source) ?? []), old.node]);
    }
    const fresh: { source: string; node: HTMLElement; typeset: boolean }[] = [];
    for (const [i, source] of sources.slice(kept).entries()) {
      const reused = kept + i < sources.length - 1 ? spare.get(source)?.shift() : undefined;
      if (reused) {
        fresh.push({ source, node: reused, typeset: false });
        continue;
      }
      const node = document.createElement('div');
      node.className = 'jp-cellmage-Block';
      node.append(await fragment(source, this._options));
      fresh.push({ source, node, typeset: true });
    }
    for (const nodes of spare.values()) {
      nodes.forEach(node => node.remove());
    }
    for (const block of fresh) {
      this._host.append(block.node); // in order: a reused node moves to its place
      this._blocks.push({ source: block.source, node: block.node });
      if (block.typeset) {
        await typeset(block.node, this._options);
      }
    }
  }
}
