// The detail panel of the selected job: status, progress and phase kept live (events.js), the
// field list, and Download / Cancel / Retry / Delete; from the job's full record (record.js,
// GET /jobs/{id}) its outputs with their players and files (outputs.js) and its tasks (tasks.js).
// A job of one video or sound file plays it in the panel's own player (panel_media.js, with the log).
import { apiFetch, apiJson, errorText } from './api.js';
import { $, el, show, showAlert } from './dom.js';
import { followJob } from './events.js';
import {
  FAILED_IN, FIELD_ORDER, FINAL, STATUS_LABELS, baseName, clampPct, fieldLabel, fieldValue, fmtDuration, fmtTime,
  jobTitle, progressLine, setBadge, tookSeconds,
} from './format.js';
import { markSelected, refreshList, updateListedJob } from './jobs.js';
import { renderOutputs, resetOutputs } from './outputs.js';
import { downloadUrl, loadLog, logShownFor, playerShownFor, resetPlayerAndLog, showPlayer } from './panel_media.js';
import { refreshRecord, resetRecord } from './record.js';
import { renderTasks, resetTasks } from './tasks.js';

const enc = encodeURIComponent;

const state = {
  selectedId: null,
  detail: null, // the job as shown
  record: null, // its full record (GET /jobs/{id}), once fetched
  detailCtl: null, // aborts following the shown job
  live: '',
};

export const selectedJobId = () => state.selectedId;

export function selectJob(jobId, { force = false } = {}) {
  if (!force && state.selectedId === jobId && state.detailCtl) return;
  if (state.detailCtl) state.detailCtl.abort();
  state.selectedId = jobId;
  state.detail = null;
  state.record = null;
  resetPlayerAndLog();
  showAlert($('action-error'), '');
  markSelected(jobId);
  show($('detail-empty'), false);
  show($('detail-body'), true);
  clearDetail(jobId);
  const ctl = new AbortController();
  state.detailCtl = ctl;
  if (location.hash !== `#job=${jobId}`) history.replaceState(null, '', `#job=${enc(jobId)}`);
  followJob(jobId, ctl.signal, {
    onJob: renderDetail,
    onLive: setLive,
    onProblem: showDetailProblem,
    current: () => state.detail,
  });
}

// Nothing of the previously shown job may linger while the next one loads.
function clearDetail(jobId) {
  $('detail-name').textContent = 'Loading…';
  $('detail-name').title = '';
  $('detail-id').textContent = jobId;
  const badge = $('detail-status');
  badge.dataset.status = '';
  badge.textContent = '…';
  const track = $('detail-progress-track');
  track.dataset.status = '';
  track.classList.add('no-anim'); // the next job's bar starts where it is, not from the last one's
  $('detail-bar').style.width = '0%';
  setProgressValue(track, 0, '');
  $('detail-announce').textContent = '';
  requestAnimationFrame(() => requestAnimationFrame(() => track.classList.remove('no-anim')));
  $('detail-pct').textContent = '';
  $('detail-phase').textContent = '';
  ['download-button', 'cancel-button', 'retry-button', 'delete-button', 'detail-error'].forEach((id) => show($(id), false));
  $('detail-fields').replaceChildren();
  resetRecord();
  resetOutputs();
  resetTasks();
  setLive('', '');
}

function setLive(mode, text) {
  state.live = mode;
  const node = $('detail-live');
  node.dataset.mode = mode;
  node.textContent = text;
}

function showDetailProblem(err) {
  $('detail-name').textContent = err.status === 404 ? 'Job not found' : 'Could not load the job';
  showAlert($('action-error'), errorText(err));
  setLive('', '');
}

// The bar as assistive technology sees it (role="progressbar" in index.html).
function setProgressValue(track, pct, text) {
  track.setAttribute('aria-valuenow', String(pct));
  if (text) track.setAttribute('aria-valuetext', `${pct}%, ${text}`);
  else track.removeAttribute('aria-valuetext');
}

function renderDetail(job) {
  const previous = state.detail && state.detail.job_id === job.job_id ? state.detail : null;
  state.detail = job;
  updateListedJob(job);
  let pct = clampPct(job.progress);
  // A run that ends failed or canceled is reset to 0 % on the server; show how far it got instead.
  if ((job.status === 'canceled' || job.status === 'failed') && previous && !FINAL.has(previous.status)) {
    pct = Math.max(pct, clampPct(previous.progress));
    job.progress = pct;
  }
  $('detail-name').textContent = jobTitle(withRecord(job));
  $('detail-name').title = job.source;
  if (!previous || previous.status !== job.status) {
    // One short sentence per status change: the card itself is not a live region (it changes many times a second).
    $('detail-announce').textContent = `${baseName(job.source)}: ${STATUS_LABELS[job.status] || job.status}`;
  }
  $('detail-id').textContent = job.job_id;
  setBadge($('detail-status'), job.status);

  const track = $('detail-progress-track');
  track.dataset.status = job.status;
  track.parentElement.dataset.status = job.status;
  $('detail-bar').style.width = `${pct}%`;
  // A run that stopped before we saw it move reads 0 % from the server: no number rather than a wrong one.
  const stoppedUnseen = (job.status === 'canceled' || job.status === 'failed') && pct === 0;
  $('detail-pct').textContent = stoppedUnseen ? '' : `${pct}%`;
  let phase = progressLine(job);
  if (job.status === 'failed') phase = FAILED_IN[job.phase] || 'Failed';
  if (job.status === 'canceled') phase = 'Canceled';
  if (job.status === 'completed') {
    const took = tookSeconds(job);
    phase = took !== null ? `Done in ${fmtDuration(took)}` : 'Done';
  }
  $('detail-phase').textContent = phase;
  setProgressValue(track, pct, phase);
  if (FINAL.has(job.status)) setLive('final', `Finished ${fmtTime(job.completed_at) || ''}`.trim());

  show($('download-button'), job.status === 'completed' && hasOneFile(state.record));
  show($('cancel-button'), job.status === 'queued' || job.status === 'processing');
  show($('retry-button'), job.status === 'failed' || job.status === 'canceled');
  show($('delete-button'), FINAL.has(job.status));

  const errorBox = $('detail-error');
  errorBox.querySelector('.error-title').textContent = job.status === 'failed' ? 'Why it failed' : 'Note';
  $('detail-error-text').textContent = job.error || '';
  show(errorBox, Boolean(job.error) && job.status !== 'completed');

  if (previous && previous.status !== job.status && !FINAL.has(job.status)) resetPlayerAndLog();
  const media = playable(job, state.record);
  if (job.status === 'completed' && !playerShownFor(job.job_id) && media) showPlayer(job, media);
  if ((job.status === 'failed' || job.status === 'completed') && job.log_path && !logShownFor(job.job_id)) loadLog(job);

  renderFields(job);
  refreshRecord(job, onRecord);
}

// The job as /status tells it, with what only its record knows (template, outputs) once fetched.
function withRecord(job) {
  const record = state.record && state.record.job_id === job.job_id ? state.record : null;
  return record ? { ...job, template: record.template, outputs: record.outputs } : job;
}

// One file in all (a seed job's output, or one output of one file): Download fetches /download/{id}.
// A job of many files has a link per file in its outputs instead (/download/{id} answers 409 for it).
function hasOneFile(record) {
  if (!record) return false;
  const files = record.outputs.flatMap((o) => o.files || []);
  return record.outputs.length === 0 || (files.length === 1 && !record.outputs.some((o) => o.segments));
}

// The job's one file, when it is a video or a sound: it plays in the panel's own player, from
// /download/{id} like Download, as a seed job's always did. {audio, format} or null.
function playable(job, record) {
  if (!hasOneFile(record)) return null;
  if (!record.outputs.length) return { audio: job.output_format === 'mp3', format: job.output_format };
  const [file] = record.outputs.flatMap((o) => o.files || []);
  const mime = String((file && file.mime_type) || '');
  if (!mime.startsWith('video/') && !mime.startsWith('audio/')) return null;
  return { audio: mime.startsWith('audio/'), format: file.path.split('.').pop() };
}

function onRecord(record, signed) {
  if (record.job_id !== state.selectedId) return;
  state.record = record;
  const job = state.detail;
  const media = job ? playable(job, record) : null;
  renderOutputs(record, signed, { mediaInPanel: Boolean(media) });
  renderTasks(record);
  if (!job) return;
  show($('download-button'), job.status === 'completed' && hasOneFile(record));
  $('detail-name').textContent = jobTitle(withRecord(job));
  if (job.status === 'completed' && !playerShownFor(job.job_id) && media) showPlayer(job, media);
  renderFields(job);
}

// A job made of outputs has no method or format, and a job of many files no single output path:
// those rows go; its template (from the record) comes instead.
const SEED_ONLY = new Set(['method_name', 'output_format', 'output_path']);

function renderFields(status) {
  const job = { ...status, template: withRecord(status).template };
  const manyFiles = Boolean(state.record) && !hasOneFile(state.record);
  const rows = [];
  const known = new Set();
  const add = (key, label) => {
    known.add(key);
    const value = fieldValue(key, job[key], job);
    if (value === null && (key === 'template' || (SEED_ONLY.has(key) && !job.method_name))) return;
    if (key === 'output_path' && manyFiles) return; // the first of many files: each output lists its own
    const dt = el('dt', null, label);
    const dd = el('dd', value === null ? 'none' : '', value === null ? '—' : value);
    if (value !== null && ['job_id', 'source', 'output_path', 'log_path'].includes(key)) dd.classList.add('mono');
    if (key.endsWith('_at') && job[key]) dd.title = job[key];
    dd.dataset.field = key;
    rows.push(dt, dd);
  };
  FIELD_ORDER.forEach(([key, label]) => add(key, label));
  Object.keys(job).filter((key) => !known.has(key)).forEach((key) => add(key, fieldLabel(key)));
  $('detail-fields').replaceChildren(...rows);
}

// --- download, cancel, retry, delete ---------------------------------------------------------------------

async function onDownload() {
  const job = state.detail;
  if (!job) return;
  showAlert($('action-error'), '');
  const button = $('download-button');
  button.disabled = true;
  try {
    // A plain link either way: the browser's own download, streamed to disk, any size.
    const link = document.createElement('a');
    link.href = await downloadUrl(job);
    link.download = '';
    document.body.append(link);
    link.click();
    link.remove();
  } catch (err) {
    showAlert($('action-error'), `Download failed: ${errorText(err)}`);
  } finally {
    button.disabled = false;
  }
}

async function onJobAction(action) {
  const jobId = state.selectedId;
  if (!jobId) return;
  const buttons = [$('cancel-button'), $('retry-button')];
  buttons.forEach((b) => { b.disabled = true; });
  showAlert($('action-error'), '');
  try {
    const job = await apiJson(`jobs/${enc(jobId)}/${action}`, { method: 'POST' });
    if (state.selectedId !== jobId) return;
    if (action === 'retry') selectJob(jobId, { force: true });
    else renderDetail(job);
    refreshList();
  } catch (err) {
    showAlert($('action-error'), errorText(err));
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
  }
}

// Removes the job, its output and its log on the server; the panel then shows no job.
async function onDelete() {
  const jobId = state.selectedId;
  if (!jobId || !window.confirm('Delete this job with its output and log? This cannot be undone.')) return;
  const button = $('delete-button');
  button.disabled = true;
  showAlert($('action-error'), '');
  try {
    await apiFetch(`jobs/${enc(jobId)}`, { method: 'DELETE' });
    if (state.selectedId === jobId) clearSelection();
    refreshList();
  } catch (err) {
    showAlert($('action-error'), errorText(err));
  } finally {
    button.disabled = false;
  }
}

export function clearSelection() {
  if (state.detailCtl) state.detailCtl.abort();
  state.selectedId = null;
  state.detail = null;
  state.detailCtl = null;
  state.record = null;
  resetPlayerAndLog();
  resetRecord();
  resetOutputs();
  resetTasks();
  markSelected(null);
  show($('detail-body'), false);
  show($('detail-empty'), true);
  history.replaceState(null, '', location.pathname + location.search);
}

export function initDetail() {
  $('delete-button').addEventListener('click', onDelete);
  $('download-button').addEventListener('click', onDownload);
  $('cancel-button').addEventListener('click', () => onJobAction('cancel'));
  $('retry-button').addEventListener('click', () => onJobAction('retry'));
}
