/**
 * What a running answer shows under its text: from the moment it is asked, "waiting for ‹model›…"
 * with the seconds so far, then (once text comes) "writing…" with the seconds; and the Stop control,
 * on every page that shows the answer (the asker's, a collaborator's, the page of a kernel's
 * `%%llm`). The extension's own DOM, after the answer's blocks, never part of the answer.
 */
import { stopIcon } from '@jupyterlab/ui-components';

import { LiveAnswer } from './live';

/** Our own controls inside an answer's output (never from the answer). */
export const CONTROLS_CLASS = 'jp-cellmage-Controls';

export class Progress {
  readonly node: HTMLDivElement;
  private readonly _label: HTMLSpanElement;
  private readonly _timer: ReturnType<typeof setInterval>;

  constructor(private readonly _answer: LiveAnswer) {
    this.node = document.createElement('div');
    this.node.className = `${CONTROLS_CLASS} jp-cellmage-Progress`;
    this.node.setAttribute('role', 'status');
    this._label = document.createElement('span');
    this._label.className = 'jp-cellmage-Progress-label';
    const stop = document.createElement('button');
    stop.type = 'button';
    stop.className = 'jp-cellmage-Stop jp-Button jp-mod-minimal';
    stop.title = 'Stop the answer (the provider stops too)';
    stop.append(stopIcon.element({ tag: 'span', className: 'jp-cellmage-ButtonIcon' }), document.createTextNode('Stop'));
    stop.addEventListener('click', event => {
      event.stopPropagation();
      stop.disabled = true;
      void this._answer.stop();
    });
    this.node.append(this._label, stop);
    this.update();
    // Seconds tick while it runs; the renderer disposes of this when the answer ends.
    this._timer = setInterval(() => this.update(), 1000);
  }

  /** The words for the answer's state now. */
  update(): void {
    const seconds = Math.floor((performance.now() - this._answer.since) / 1000);
    const model = this._answer.model || 'the model';
    const words = this._answer.text ? `${model} is writing… ${seconds} s` : `waiting for ${model}… ${seconds} s`;
    if (this._label.textContent !== words) {
      this._label.textContent = words;
    }
  }

  dispose(): void {
    clearInterval(this._timer);
    this.node.remove();
  }
}
