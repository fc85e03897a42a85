// Following one job live: its current state, then Server-Sent Events from /jobs/{id}/events read
// with fetch + a stream reader (EventSource cannot send the X-API-Key header), reconnecting with
// Last-Event-ID; if there is no stream, polling /status/{id}. It touches no page element: it
// reports through handlers.
import { apiFetch, apiJson, errorText } from './api.js';
import { FINAL } from './format.js';

export const POLL_MS = 1500;
const STREAM_IDLE_MS = 45000; // no byte (not even a keep-alive) for this long: reconnect

const enc = encodeURIComponent;

const sleep = (ms, signal) => new Promise((resolve) => {
  const timer = setTimeout(resolve, ms);
  if (signal) signal.addEventListener('abort', () => { clearTimeout(timer); resolve(); }, { once: true });
});

// Follows jobId until it is final or signal aborts. handlers:
//   onJob(job)          every state of the job received
//   onLive(mode, text)  how updates arrive: 'stream', 'poll', 'reconnecting'
//   onProblem(err)      the first GET /status/{id} failed
//   current()           the job as shown now (it may change outside this loop, e.g. after Cancel)
export async function followJob(jobId, signal, handlers) {
  const { onJob, onLive, onProblem, current } = handlers;
  try {
    const job = await apiJson(`status/${enc(jobId)}`, { signal, cache: 'no-store' });
    if (signal.aborted) return;
    onJob(job);
    if (FINAL.has(job.status)) return;
  } catch (err) {
    if (signal.aborted) return;
    onProblem(err);
    if (err.status === 404 || err.status === 401) return;
  }
  let failures = 0;
  const cursor = { lastEventId: '' };
  while (!signal.aborted) {
    let outcome;
    try {
      outcome = await streamEvents(jobId, signal, cursor, handlers);
    } catch (err) {
      outcome = 'error';
    }
    if (signal.aborted) return;
    const shown = current();
    if (shown && FINAL.has(shown.status)) return;
    if (outcome === 'unsupported') break;
    if (outcome === 'ended') { // the server ends long streams now and then: carry on at once
      failures = 0;
      continue;
    }
    failures += 1;
    if (failures >= 3) break;
    onLive('reconnecting', 'Live updates interrupted, reconnecting…');
    await sleep(1000 * failures, signal);
  }
  if (!signal.aborted) await pollStatus(jobId, signal, handlers);
}

// 'ended' when the server closed a stream that carried something, 'unsupported' when there is no
// stream to read; throws (or 'empty') otherwise.
async function streamEvents(jobId, signal, cursor, { onJob, onLive }) {
  const local = new AbortController();
  const abort = () => local.abort();
  signal.addEventListener('abort', abort, { once: true });
  let idle;
  const touch = () => { clearTimeout(idle); idle = setTimeout(abort, STREAM_IDLE_MS); };
  try {
    let res;
    try {
      res = await apiFetch(`jobs/${enc(jobId)}/events`, {
        signal: local.signal,
        cache: 'no-store',
        headers: cursor.lastEventId
          ? { Accept: 'text/event-stream', 'Last-Event-ID': cursor.lastEventId }
          : { Accept: 'text/event-stream' },
      });
    } catch (err) {
      if ([404, 405, 501].includes(err.status)) return 'unsupported';
      throw err;
    }
    const type = res.headers.get('content-type') || '';
    if (!type.includes('text/event-stream') || !res.body) {
      res.body?.cancel().catch(() => {});
      return 'unsupported';
    }
    onLive('stream', 'Live updates (server-sent events)');
    touch();
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let received = 0;
    const parser = sseParser((event) => {
      if (event.type !== 'job' && event.type !== 'message') return;
      let job;
      try { job = JSON.parse(event.data); } catch { return; }
      if (event.id) cursor.lastEventId = event.id;
      received += 1;
      if (job && job.job_id === jobId && !signal.aborted) onJob(job);
    });
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      touch();
      parser(decoder.decode(value, { stream: true }));
    }
    return received ? 'ended' : 'empty';
  } finally {
    clearTimeout(idle);
    signal.removeEventListener('abort', abort);
    local.abort();
  }
}

// The text/event-stream format: lines "field: value", events end at a blank line, ":" lines are comments.
function sseParser(onEvent) {
  let buffer = '';
  let data = [];
  let type = '';
  let id = '';
  return (chunk) => {
    buffer += chunk;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(buffer);
      if (!match) break;
      if (match[0] === '\r' && match.index === buffer.length - 1) break; // maybe half of \r\n
      const line = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      if (line === '') {
        if (data.length) onEvent({ type: type || 'message', data: data.join('\n'), id });
        data = [];
        type = '';
        continue;
      }
      if (line.startsWith(':')) continue; // keep-alive
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') type = value;
      else if (field === 'id' && !value.includes('\0')) id = value;
    }
  };
}

async function pollStatus(jobId, signal, { onJob, onLive }) {
  while (!signal.aborted) {
    if (document.visibilityState === 'visible') {
      try {
        const job = await apiJson(`status/${enc(jobId)}`, { signal, cache: 'no-store' });
        if (signal.aborted) return;
        onLive('poll', 'Live updates (polling every 1.5 s)');
        onJob(job);
        if (FINAL.has(job.status)) return;
      } catch (err) {
        if (signal.aborted) return;
        onLive('reconnecting', `Cannot reach the server (${errorText(err)}), retrying…`);
      }
    }
    await sleep(POLL_MS, signal);
  }
}
