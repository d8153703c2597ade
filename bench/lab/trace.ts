/**
 * An answer's longest main-thread tasks from a Chromium trace, by thread (CPU) time as well as by
 * wall time. A task's wall time, which is all the longtask API sees, includes the time the renderer
 * waited for a core: on a busy two-core machine, layout and paint tasks of 50–150 ms wall held only
 * 8–16 ms of CPU. Thread time is what the page's own work cost.
 *
 * The page marks the answer's start and the `done` event's arrival with console.timeStamp (START,
 * DONE); those marks also tell which thread is the page's main thread.
 */

/** The trace categories: RunTask (with its thread time) and the console.timeStamp marks. */
export const CATEGORIES = ['disabled-by-default-devtools.timeline', 'devtools.timeline'];
export const START = 'cellmageBenchStart';
export const DONE = 'cellmageBenchDone';

export interface ILongest {
  cpuMs: number; // the most thread time any one task took
  wallMs: number; // the most wall time any one task took
}

/** The longest tasks that ended while the answer streamed (START to DONE) and after DONE. */
export function longestTasks(trace: Buffer): { streaming: ILongest; end: ILongest } {
  // JSON boundary: Chromium's trace event format.
  const parsed = JSON.parse(trace.toString('utf-8'));
  const events: any[] = Array.isArray(parsed) ? parsed : parsed.traceEvents;
  const mark = (message: string) => events.find(e => e.name === 'TimeStamp' && e.args?.data?.message === message);
  const start = mark(START);
  const done = mark(DONE);
  if (!start || !done) {
    throw new Error('the trace lacks the start or done mark');
  }
  const streaming: ILongest = { cpuMs: 0, wallMs: 0 };
  const end: ILongest = { cpuMs: 0, wallMs: 0 };
  for (const e of events) {
    if (e.name !== 'RunTask' || e.ph !== 'X' || e.pid !== start.pid || e.tid !== start.tid) {
      continue;
    }
    const ends = e.ts + e.dur;
    if (ends <= start.ts) {
      continue;
    }
    const phase = ends <= done.ts ? streaming : end;
    phase.cpuMs = Math.max(phase.cpuMs, (e.tdur ?? e.dur) / 1000);
    phase.wallMs = Math.max(phase.wallMs, e.dur / 1000);
  }
  return { streaming, end };
}
