/**
 * An incremental Server-Sent Events parser (WHATWG HTML, "Interpreting an event stream"): bytes
 * in, in any split; events out. Lines end at CRLF, CR or LF only; one space after the colon is
 * dropped; comments are ignored. Pure: no JupyterLab imports.
 */

export interface ISSEEvent {
  event: string;
  data: string;
}

export class SSEParser {
  private _decoder = new TextDecoder('utf-8');
  private _buffer = '';
  private _pendingCR = false;
  private _data: string[] = [];
  private _event = '';
  private _first = true;

  /** Feed bytes; returns the events they completed. */
  push(chunk: Uint8Array): ISSEEvent[] {
    return this._text(this._decoder.decode(chunk, { stream: true }));
  }

  /** The stream ended: a last unterminated event is dropped, as the spec says. */
  end(): ISSEEvent[] {
    return this._text(this._decoder.decode());
  }

  private _text(text: string): ISSEEvent[] {
    if (this._first && text) {
      this._first = false;
      if (text.charCodeAt(0) === 0xfeff) {
        text = text.slice(1);
      }
    }
    const out: ISSEEvent[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (this._pendingCR) {
        this._pendingCR = false;
        if (ch === 10) {
          start = i + 1;
          continue;
        }
      }
      if (ch === 10 || ch === 13) {
        this._line(this._buffer + text.slice(start, i), out);
        this._buffer = '';
        start = i + 1;
        this._pendingCR = ch === 13;
      }
    }
    this._buffer += text.slice(start);
    return out;
  }

  private _line(line: string, out: ISSEEvent[]): void {
    if (line === '') {
      if (this._data.length) {
        out.push({ event: this._event || 'message', data: this._data.join('\n') });
      }
      this._data = [];
      this._event = '';
      return;
    }
    if (line.startsWith(':')) {
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) {
      value = value.slice(1);
    }
    if (field === 'event') {
      this._event = value;
    } else if (field === 'data') {
      this._data.push(value);
    }
  }
}
