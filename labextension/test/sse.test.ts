// The SSE parser against the spec's rules, fed in every split.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';

import { ISSEEvent, SSEParser } from '../src/sse';

function parseIn(pieces: Uint8Array[]): ISSEEvent[] {
  const parser = new SSEParser();
  return [...pieces.flatMap(p => parser.push(p)), ...parser.end()];
}

const encoder = new TextEncoder();

function bytewise(text: string): Uint8Array[] {
  return Array.from(encoder.encode(text), b => new Uint8Array([b]));
}

test('events, comments, and one dropped space after the colon', () => {
  const text = ': hello\n\nevent: delta\ndata: {"text":"a"}\n\ndata:  two spaces\ndata\n\n';
  assert.deepEqual(parseIn([encoder.encode(text)]), [
    { event: 'delta', data: '{"text":"a"}' },
    { event: 'message', data: ' two spaces\n' }
  ]);
});

test('CR, LF and CRLF end lines; U+2028 and U+0085 do not', () => {
  const text = 'data: a\u2028b\u0085c\r\ndata: d\rdata: e\n\r\n';
  assert.deepEqual(parseIn(bytewise(text)), [{ event: 'message', data: 'a\u2028b\u0085c\nd\ne' }]);
});

test('a CRLF split between two chunks is one line end', () => {
  const parts = [encoder.encode('data: x\r'), encoder.encode('\n\r'), encoder.encode('\n')];
  assert.deepEqual(parseIn(parts), [{ event: 'message', data: 'x' }]);
});

test('multibyte characters split across chunks come out whole', () => {
  const text = 'event: delta\ndata: {"text":"héllo 日本 🙂👩‍💻"}\n\n';
  assert.deepEqual(parseIn(bytewise(text)), [{ event: 'delta', data: '{"text":"héllo 日本 🙂👩‍💻"}' }]);
});

test('an unterminated last event is dropped, and a leading BOM ignored', () => {
  assert.deepEqual(parseIn([encoder.encode('\ufeffdata: kept\n\ndata: lost')]), [
    { event: 'message', data: 'kept' }
  ]);
});
