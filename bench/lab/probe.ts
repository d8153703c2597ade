/**
 * What the Markdown benchmark watches inside the page (installProbe runs there, through
 * page.evaluate: it must not use anything from outside its own body).
 *
 * - A marker's **arrival**: TextDecoder.prototype.decode is wrapped to note when a marker's bytes
 *   are first decoded — the plugin's SSE parser decodes each network read as it resolves, so this
 *   is when the delta reached the page's script. The wrapper returns the decoded text unchanged and
 *   touches neither fetch nor the stream (teeing fetch's body broke answers before). Markers split
 *   between two reads are still found (the last characters of each decoder's text are kept). The
 *   `done` event's arrival is noted the same way (and marked for the trace): it ends the streaming
 *   phase.
 * - A marker's **pixels**: a MutationObserver on the asked cell's output area notes when a marker
 *   first enters the DOM; the frame after that is when it shows — requestAnimationFrame, then a
 *   message posted from it, which runs once that frame's style, layout and paint are done.
 * - **Long tasks**: a PerformanceObserver for `longtask` entries (tasks of 50 ms or more).
 * - The **end** of the final render: the frame after the output area's last change.
 */
export function installProbe(asked: number): void {
  const w = window as any;
  const MARKER = /zq\d+zq/g;
  const probe = {
    active: false,
    arrivals: new Map<string, number>(), // marker → when its bytes were decoded
    inDom: new Map<string, number>(), // marker → when it entered the output's DOM
    shown: new Map<string, number>(), // marker → the end of the frame that first showed it
    answerDecoder: null as TextDecoder | null, // the decoder that saw markers: the answer's stream
    tails: new WeakMap<TextDecoder, string>(),
    doneAt: null as number | null, // when the `done` event arrived
    lastChange: 0, // the output area's last DOM change
    lastFrame: 0, // the end of the frame after it
    longTasks: [] as { start: number; end: number }[],
    reset(): void {
      probe.arrivals.clear();
      probe.inDom.clear();
      probe.shown.clear();
      probe.answerDecoder = null;
      probe.doneAt = null;
    }
  };
  w.benchProbe = probe;

  const decode = TextDecoder.prototype.decode;
  TextDecoder.prototype.decode = function (this: TextDecoder, input?: any, options?: any): string {
    const text = decode.call(this, input, options);
    if (probe.active && text) {
      const now = performance.now();
      const seen = (probe.tails.get(this) ?? '') + text;
      if (seen.includes('zq')) {
        for (const [marker] of seen.matchAll(MARKER)) {
          if (!probe.arrivals.has(marker)) {
            probe.arrivals.set(marker, now);
          }
          probe.answerDecoder = this;
        }
      }
      if (this === probe.answerDecoder && probe.doneAt === null && seen.includes('event: done')) {
        probe.doneAt = now;
        console.timeStamp('cellmageBenchDone'); // for the trace (trace.ts: DONE)
      }
      probe.tails.set(this, seen.slice(-16));
    }
    return text;
  };

  // The frame after a DOM change: markers waiting for it, then those it is painting.
  let waiting: string[] = [];
  let painting: string[] = [];
  let requested = false;
  const afterPaint = new MessageChannel();
  afterPaint.port1.onmessage = () => {
    const now = performance.now();
    for (const marker of painting) {
      probe.shown.set(marker, now);
    }
    painting = [];
    probe.lastFrame = now;
  };
  const nextFrame = () => {
    if (!requested) {
      requested = true;
      requestAnimationFrame(() => {
        requested = false;
        painting.push(...waiting);
        waiting = [];
        afterPaint.port2.postMessage(null);
      });
    }
  };

  const cell = w.jupyterapp.shell.currentWidget.content.widgets[asked];
  new MutationObserver(records => {
    const now = performance.now();
    probe.lastChange = now;
    if (probe.active) {
      for (const record of records) {
        const nodes = record.type === 'characterData' ? [record.target] : Array.from(record.addedNodes);
        for (const node of nodes) {
          const text = node.textContent;
          if (text && text.includes('zq')) {
            for (const [marker] of text.matchAll(MARKER)) {
              if (probe.arrivals.has(marker) && !probe.inDom.has(marker)) {
                probe.inDom.set(marker, now);
                waiting.push(marker);
              }
            }
          }
        }
      }
    }
    nextFrame();
  }).observe(cell.outputArea.node, { childList: true, subtree: true, characterData: true });

  new PerformanceObserver(list => {
    for (const entry of list.getEntries()) {
      probe.longTasks.push({ start: entry.startTime, end: entry.startTime + entry.duration });
    }
  }).observe({ type: 'longtask' });
}
