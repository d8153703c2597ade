/**
 * JupyterLab's table of contents, given an answer's headings by this extension (JupyterLab's
 * defaults kept: outputs' headings are included). JupyterLab finds a code cell's headings in its
 * outputs' text/html, sanitized again, once the output is written: for an answer, all of them at
 * once at its end. Here a cell that holds an answer reports, for that output, the headings of its
 * safe Markdown (tocheadings.ts) and, while it streams, those of the text so far, refreshing the
 * table of contents as they grow; the cell's other outputs get JupyterLab's treatment. So the
 * table of contents follows the answer and has nothing left to add when it ends.
 *
 * The setting `answerHeadings` (false) leaves every cell to JupyterLab, as without this plugin.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Cell, CodeCell } from '@jupyterlab/cells';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IOutputModel, IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITableOfContentsTracker, TableOfContentsModel, TableOfContentsUtils } from '@jupyterlab/toc';

import { ANSWER_MIME } from './answermime';
import { LiveAnswer, liveAnswers } from './live';
import { allowedImageOrigins } from './render';
import { answerId } from './shapes';
import { answerHeadings, IAnswerHeading, LiveHeadings, sameHeadings } from './tocheadings';

const PLUGIN_ID = 'cellmage-server:toc';
/** How often at most a streaming answer's new headings refresh the table of contents (ms). */
const LIVE_MS = 1000;

type Headings = () => Promise<Cell.IHeading[]>;
/** A cell as the table of contents asks it for its headings since JupyterLab 4.3 (4.2 reads a
 * getter instead: there, every cell is left to JupyterLab). */
type HeadingsSource = Cell & { getHeadings?: Headings };
type ParseHeadings = (text: string, parser: IRenderMime.IMarkdownParser | null) => Promise<IAnswerHeading[]>;

/** The headings a cell's output shows, as JupyterLab's CodeCell.getHeadings finds them (for the
 * outputs that are not answers). */
async function jupyterLabHeadings(output: IOutputModel, rendermime: IRenderMimeRegistry): Promise<IAnswerHeading[]> {
  const types = Object.keys(output.data);
  const html = types.find(t => TableOfContentsUtils.isHTML(t));
  const markdown = types.find(t => TableOfContentsUtils.Markdown.isMarkdown(t));
  if (html !== undefined) {
    const data = output.data[html];
    const text = typeof data === 'string' ? data : Array.isArray(data) ? data.join('\n') : '';
    return TableOfContentsUtils.getHTMLHeadings(rendermime.sanitizer.sanitize(text));
  }
  const parse = (TableOfContentsUtils.Markdown as { parseHeadings?: ParseHeadings }).parseHeadings;
  if (markdown !== undefined && parse !== undefined) {
    return parse(output.data[markdown] as string, rendermime.markdownParser ?? null);
  }
  return [];
}

/** An output's answer mark, if it is an answer (JSON boundary: the output's data as stored). */
function markOf(output: IOutputModel): any {
  const mark = output.data[ANSWER_MIME] as any;
  return mark !== null && typeof mark === 'object' ? mark : null;
}

/** A streaming answer's headings so far; `grew` when they changed (at most every LIVE_MS). */
class LiveWatch {
  headings: IAnswerHeading[] = [];
  private readonly _live = new LiveHeadings(allowedImageOrigins());
  private _timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    readonly answer: LiveAnswer,
    private readonly _grew: () => void,
    private readonly _ended: () => void
  ) {
    answer.changed.connect(this._changed, this);
    this._changed();
  }

  dispose(): void {
    this.answer.changed.disconnect(this._changed, this);
    if (this._timer !== null) {
      clearTimeout(this._timer);
    }
  }

  private _changed(): void {
    if (this.answer.end !== null) {
      this._ended(); // the stored answer, written next, has its own headings
    } else if (this._timer === null) {
      this._timer = setTimeout(() => {
        this._timer = null;
        const headings = this._live.update(this.answer.text);
        if (!sameHeadings(headings, this.headings)) {
          this.headings = headings;
          this._grew();
        }
      }, LIVE_MS);
    }
  }
}

export class AnswerToc {
  /** The `answerHeadings` setting. */
  enabled = true;
  private readonly _patched = new WeakSet<Cell>();
  /** A cell's headings until its outputs change (not while an answer streams in it). */
  private readonly _cached = new WeakMap<Cell, Cell.IHeading[]>();
  /** How many times a cell's outputs changed (a cached value must not be older). */
  private readonly _changes = new WeakMap<Cell, number>();
  private readonly _watches = new Map<string, LiveWatch>();

  constructor(
    notebooks: INotebookTracker,
    private readonly _tocs: ITableOfContentsTracker
  ) {
    notebooks.widgetAdded.connect((_, panel) => {
      void panel.context.ready.then(() => {
        this._patch(panel);
        panel.content.model?.cells.changed.connect(() => this._patch(panel));
      });
    });
    // An answer that started (a follower learns its cell from the server): a table of contents
    // that shows its placeholder asks for its headings again, and so starts following them.
    liveAnswers.cellsChanged.connect(() => notebooks.forEach(panel => this._streaming(panel) && this._refresh(panel)));
  }

  /** Each code cell reports its headings through `_headings`. */
  private _patch(panel: NotebookPanel): void {
    for (const cell of panel.content.widgets as HeadingsSource[]) {
      if (cell.model.type !== 'code' || cell.getHeadings === undefined || this._patched.has(cell)) {
        continue;
      }
      this._patched.add(cell);
      const own: Headings = cell.getHeadings.bind(cell);
      (cell as CodeCell).model.outputs.changed.connect(() => {
        this._cached.delete(cell);
        this._changes.set(cell, (this._changes.get(cell) ?? 0) + 1);
      });
      cell.getHeadings = () => this._headings(panel, cell as CodeCell, own);
    }
  }

  private async _headings(panel: NotebookPanel, cell: CodeCell, own: Headings): Promise<Cell.IHeading[]> {
    const outputs = cell.model.outputs;
    const answers = Array.from({ length: outputs.length }, (_, j) => markOf(outputs.get(j)));
    if (!this.enabled || answers.every(mark => mark === null)) {
      return own();
    }
    const cached = this._cached.get(cell);
    if (cached) {
      return [...cached];
    }
    const changes = this._changes.get(cell);
    const headings: Cell.IHeading[] = [];
    let streaming = false;
    for (let j = 0; j < outputs.length; j++) {
      const mark = answers[j];
      let found: IAnswerHeading[];
      if (mark === null) {
        found = await jupyterLabHeadings(outputs.get(j), panel.content.rendermime);
      } else if (mark.answer?.live === true) {
        streaming = true;
        found = this._live(panel, cell, answerId(mark.answer.id));
      } else {
        found = answerHeadings(typeof mark.markdown === 'string' ? mark.markdown : '');
      }
      // No id: JupyterLab finds the heading elements of an output in order, by level.
      headings.push(...found.map(h => ({ text: h.text, level: h.level, outputIndex: j, type: Cell.HeadingType.HTML })));
    }
    if (!streaming && changes === this._changes.get(cell)) {
      this._cached.set(cell, headings);
    }
    return [...headings];
  }

  /** The headings so far of the answer streaming into `cell` under this id (none if it is not
   * running in this page: a stale placeholder, or one whose cell is not known yet). */
  private _live(panel: NotebookPanel, cell: CodeCell, id: string | null): IAnswerHeading[] {
    const answer = liveAnswers.runningIn(cell.model.id);
    if (id === null || answer === null || answer.id !== id) {
      return [];
    }
    let watch = this._watches.get(id);
    if (watch?.answer !== answer) {
      watch?.dispose();
      watch = new LiveWatch(
        answer,
        () => this._refresh(panel),
        () => {
          this._watches.get(id)?.dispose();
          this._watches.delete(id);
        }
      );
      this._watches.set(id, watch);
    }
    return watch.headings;
  }

  /** Whether a cell of `panel` shows a streaming answer whose headings are not followed yet. */
  private _streaming(panel: NotebookPanel): boolean {
    return panel.content.widgets.some(cell => {
      if (cell.model.type !== 'code') {
        return false;
      }
      const outputs = (cell as CodeCell).model.outputs;
      for (let j = 0; j < outputs.length; j++) {
        const mark = markOf(outputs.get(j));
        const id = mark?.answer?.live === true ? answerId(mark.answer.id) : null;
        if (id !== null && !this._watches.has(id)) {
          return true;
        }
      }
      return false;
    });
  }

  private _refresh(panel: NotebookPanel): void {
    const model = this._tocs.get(panel);
    if (this.enabled && model instanceof TableOfContentsModel) {
      model.refresh().catch(() => undefined);
    }
  }
}

export const answerTocPlugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: "Gives JupyterLab's table of contents an answer's headings from its Markdown, as it streams.",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ITableOfContentsTracker, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    tocs: ITableOfContentsTracker | null,
    registry: ISettingRegistry | null
  ) => {
    if (tocs === null) {
      return; // no table of contents in this JupyterLab
    }
    const toc = new AnswerToc(notebooks, tocs);
    void registry
      ?.load(PLUGIN_ID)
      .then(settings => {
        const read = () => {
          toc.enabled = settings.composite.answerHeadings !== false;
        };
        read();
        settings.changed.connect(read);
      })
      .catch(() => undefined);
  }
};
