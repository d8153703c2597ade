/**
 * A growing answer as safe Markdown blocks, in time linear in its length: the text is cut into
 * chunks at blank lines outside code fences once a chunk is long enough, and each finished chunk
 * goes through safeMarkdown and is split into its top-level blocks once. Only the unfinished tail
 * is processed again on each update. Every chunk is made safe, and each block is rendered, on
 * its own, so the safety of a chunk never depends on text around it. (Where a chunk boundary cuts
 * what CommonMark would join, such as a list item's later paragraph, the live view may differ a
 * little from the stored answer. The stored answer is rendered from its own Markdown at the end.)
 * Pure: no DOM.
 */
import { safeMarkdown, topLevelBlocks } from './safemd';

const FENCE_OPEN = /^ {0,3}(`{3,}|~{3,})/;
const BLANK = /^[ \t]*$/;

export class LiveMarkdown {
  private _raw = '';
  private _cut = 0; // where the unfinished tail starts
  private _scanned = 0; // lines before this offset were looked at
  private _fence: string | null = null; // the open fence's marker, while in one
  private readonly _blocks: string[] = [];

  constructor(
    private readonly _origins: readonly string[] = [],
    /** The shortest chunk worth finishing (characters). */
    private readonly _minChunk = 2000
  ) {}

  get text(): string {
    return this._raw;
  }

  append(text: string): void {
    this._raw += text;
    let end = this._raw.indexOf('\n', this._scanned);
    while (end !== -1) {
      this._line(this._raw.slice(this._scanned, end), end + 1);
      this._scanned = end + 1;
      end = this._raw.indexOf('\n', this._scanned);
    }
  }

  /** The blocks to show now: the finished chunks', then the tail's. */
  blocks(): string[] {
    const tail = this._raw.slice(this._cut);
    return tail ? this._blocks.concat(topLevelBlocks(safeMarkdown(tail, this._origins))) : this._blocks.slice();
  }

  /** One complete line, which ends just before `next`. */
  private _line(line: string, next: number): void {
    if (this._fence !== null) {
      const close = line.match(FENCE_OPEN);
      if (close && close[1][0] === this._fence[0] && close[1].length >= this._fence.length && BLANK.test(line.slice(close[0].length))) {
        this._fence = null;
      }
      return;
    }
    const open = line.match(FENCE_OPEN);
    if (open && !(open[1][0] === '`' && line.slice(open[0].length).includes('`'))) {
      this._fence = open[1];
    } else if (BLANK.test(line) && next - this._cut >= this._minChunk) {
      // Without the blank line's own newline: cut there, the whole text's blocks end the same way.
      const chunk = this._raw.slice(this._cut, next - 1);
      this._blocks.push(...topLevelBlocks(safeMarkdown(chunk, this._origins)));
      this._cut = next;
    }
  }
}
