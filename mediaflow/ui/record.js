// The shown job's full record, from GET /jobs/{id}: its outputs (each with status, progress, notes and
// files), its tasks and its template. GET /status and the event stream carry none of these, so the
// record is fetched on the detail panel's own updates (events.js), at most every REFRESH_MS, every
// REFRESH_MS on its own while the job runs (an output or a task moving changes no field of the job
// itself, so no event comes for it), and once more when the job ends.
// Also keeps the job's signed base URL (GET /jobs/{id}/files): a <video> or <img> cannot send the
// X-API-Key header, so files load through a link that carries its own proof, renewed before it expires.
import { apiJson } from './api.js';
import { FINAL } from './format.js';

const REFRESH_MS = 1500;
const RENEW_BEFORE_S = 120; // a signed link this close to expiry is replaced before it is handed out

const enc = encodeURIComponent;
const state = { jobId: null, status: null, lastFetch: 0, timer: null, fetched: null, onRecord: null, signed: null };

export function resetRecord() {
  clearTimeout(state.timer);
  Object.assign(state, { jobId: null, status: null, lastFetch: 0, timer: null, fetched: null, onRecord: null, signed: null });
}

// Called with every state of the shown job (from /status or the stream); onRecord(record, signedBase)
// runs with each record fetched. signedBase is null until an output has completed.
export function refreshRecord(job, onRecord) {
  if (state.jobId !== job.job_id) {
    resetRecord();
    state.jobId = job.job_id;
  }
  state.onRecord = onRecord;
  state.status = job.status;
  if (state.fetched === job.status && FINAL.has(job.status)) return; // a finished job's record no longer changes
  if (state.timer) return; // a fetch is due already; it reads the latest state then
  const wait = Math.max(0, state.lastFetch + REFRESH_MS - Date.now());
  state.timer = setTimeout(() => load(job.job_id), wait);
}

async function load(jobId) {
  state.timer = null;
  state.lastFetch = Date.now();
  let record;
  let signed = null;
  try {
    record = await apiJson(`jobs/${enc(jobId)}`, { cache: 'no-store' });
    if (record.outputs.some((o) => o.status === 'completed')) signed = await signedBase(jobId);
  } catch {
    return; // the panel shows the connection problem already; the next update tries again
  }
  if (state.jobId !== jobId) return; // another job was selected meanwhile
  state.fetched = record.status;
  state.onRecord(record, signed);
  if (!FINAL.has(record.status)) refreshRecord(record, state.onRecord);
}

// The token in "/jobs/<id>/signed/<expires>.<signature>/" says when it stops working.
export function expiresSoon(base) {
  return expiresAt(base) - Date.now() / 1000 <= RENEW_BEFORE_S;
}

function expiresAt(base) {
  const token = base.split('/').filter(Boolean)[3] || '';
  const seconds = Number(token.split('.')[0]);
  return Number.isFinite(seconds) ? seconds : 0;
}

// The job's signed base URL, renewed when it is about to expire (a page left open for an hour).
export async function signedBase(jobId) {
  if (state.signed && state.signed.jobId === jobId && !expiresSoon(state.signed.base)) {
    return state.signed.base;
  }
  const { signed_base_url: base } = await apiJson(`jobs/${enc(jobId)}/files`, { cache: 'no-store' });
  state.signed = { jobId, base };
  return base;
}
