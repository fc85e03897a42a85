// The job list: GET /process pages, the status filter, paging, and polling every POLL_MS while the
// tab is visible (it also drives the connection indicator). Rows are updated in place.
import { apiJson, errorText } from './api.js';
import { $, el, setConn, show, showAlert } from './dom.js';
import { POLL_MS } from './events.js';
import {
  STATUS_LABELS, baseName, clampPct, fmtAgo, fmtDuration, jobMakes, progressLine, setBadge, tookSeconds,
} from './format.js';

const PAGE_SIZE = 10;

const state = {
  filter: '',
  skip: 0,
  jobs: [],
  timer: null,
  busy: false,
  again: false,
  selectedId: null, // the job in the detail panel (detail.js tells, through markSelected)
};

let onSelect = () => {};

// The first page of jobs with this status ('' for all).
export function filterJobs(status) {
  state.skip = 0;
  setFilter(status);
}

function setFilter(status) {
  state.filter = status;
  document.querySelectorAll('#status-filter .chip').forEach((chip) => {
    const active = chip.dataset.status === status;
    chip.classList.toggle('active', active);
    chip.setAttribute('aria-pressed', String(active));
  });
  refreshList();
}

export async function refreshList() {
  if (state.busy) { state.again = true; return; }
  state.busy = true;
  try {
    do {
      state.again = false;
      const params = new URLSearchParams({ limit: String(PAGE_SIZE), skip: String(state.skip) });
      if (state.filter) params.set('status', state.filter);
      const data = await apiJson(`process?${params}`);
      state.jobs = Array.isArray(data.jobs) ? data.jobs : [];
      renderList();
      showAlert($('list-error'), '');
      if (document.visibilityState === 'visible') setConn('ok', 'Live');
    } while (state.again);
  } catch (err) {
    if (err.status === 401) { // no key, or a refused one: another key's jobs must not stay listed
      state.jobs = [];
      renderList();
      $('job-empty').textContent = 'Enter the API key above to see your jobs.';
    } else {
      showAlert($('list-error'), `Could not load the jobs: ${errorText(err)}`);
      setConn('error', 'Disconnected');
    }
  } finally {
    state.busy = false;
  }
}

function schedulePoll() {
  clearTimeout(state.timer);
  if (document.visibilityState !== 'visible') {
    setConn('paused', 'Paused');
    return;
  }
  state.timer = setTimeout(async () => {
    await refreshList();
    schedulePoll();
  }, POLL_MS);
}

function onVisibility() {
  if (document.visibilityState === 'visible') refreshList().then(schedulePoll);
  else schedulePoll();
}

export function startPolling() {
  refreshList().then(schedulePoll);
}

function makeRow(jobId) {
  const li = el('li');
  li.dataset.jobId = jobId;
  const button = el('button', 'job');
  button.type = 'button';
  button.dataset.testid = 'job-row';
  button.dataset.jobId = jobId;
  button.addEventListener('click', () => {
    onSelect(jobId);
    // one column (narrow window): the detail is below the list, bring it into view
    if (window.matchMedia('(max-width: 900px)').matches) $('detail').scrollIntoView({ behavior: 'smooth', block: 'start' });
  });

  const main = el('span', 'job-main');
  main.append(el('span', 'job-name'), el('span', 'job-sub'));
  const right = el('span', 'job-right');
  const badge = el('span', 'badge');
  badge.dataset.testid = 'job-status';
  right.append(badge, el('span', 'job-time'));
  const progress = el('span', 'job-progress');
  const track = el('span', 'progress');
  track.setAttribute('role', 'progressbar');
  track.setAttribute('aria-valuemin', '0');
  track.setAttribute('aria-valuemax', '100');
  const bar = el('span', 'bar');
  track.append(bar);
  const text = el('span', 'job-progress-text');
  text.dataset.testid = 'job-progress';
  progress.append(track, text);
  const error = el('span', 'job-error');
  button.append(main, right, progress, error);
  li.append(button);
  return li;
}

function updateRow(li, job) {
  const button = li.firstChild;
  button.dataset.status = job.status;
  button.classList.toggle('selected', job.job_id === state.selectedId);
  const name = baseName(job.source);
  button.querySelector('.job-name').textContent = name;
  button.title = job.source;
  button.querySelector('.job-sub').textContent =
    `${jobMakes(job)} · ${String(job.job_id).slice(0, 8)}`;
  setBadge(button.querySelector('.badge'), job.status);

  let when = fmtAgo(job.created_at);
  const took = tookSeconds(job);
  if (job.status === 'completed' && took !== null) when += ` · took ${fmtDuration(took)}`;
  button.querySelector('.job-time').textContent = when;

  const active = job.status === 'queued' || job.status === 'processing';
  const progress = button.querySelector('.job-progress');
  show(progress, active);
  progress.dataset.status = job.status;
  if (active) {
    const pct = clampPct(job.progress);
    progress.querySelector('.bar').style.width = `${pct}%`;
    const track = progress.querySelector('.progress');
    track.setAttribute('aria-valuenow', String(pct));
    track.setAttribute('aria-label', `Progress of ${name}`);
    progress.querySelector('.job-progress-text').textContent = `${progressLine(job)} · ${pct}%`;
  }
  const error = button.querySelector('.job-error');
  const showError = job.status === 'failed' && job.error;
  error.textContent = showError ? job.error : '';
  show(error, Boolean(showError));
}

export function renderList() {
  const list = $('job-list');
  const existing = new Map([...list.children].map((li) => [li.dataset.jobId, li]));
  state.jobs.forEach((job, index) => {
    let li = existing.get(job.job_id);
    if (li) existing.delete(job.job_id);
    else li = makeRow(job.job_id);
    updateRow(li, job);
    if (list.children[index] !== li) list.insertBefore(li, list.children[index] || null); // moves only when needed (keeps focus)
  });
  existing.forEach((li) => li.remove());

  const empty = $('job-empty');
  if (state.jobs.length === 0) {
    empty.textContent = state.skip > 0 ? 'No older jobs.'
      : state.filter ? `No ${STATUS_LABELS[state.filter].toLowerCase()} jobs.`
        : 'No jobs yet. Upload a video above to start one.';
  }
  show(empty, state.jobs.length === 0);
  $('prev-page').disabled = state.skip === 0;
  $('next-page').disabled = state.jobs.length < PAGE_SIZE;
  $('page-label').textContent = `Page ${Math.floor(state.skip / PAGE_SIZE) + 1}`;
}

// A job's newer state from the detail panel, shown in its row if it is on this page.
export function updateListedJob(job) {
  const li = [...$('job-list').children].find((x) => x.dataset.jobId === job.job_id);
  if (li) updateRow(li, job);
}

// Highlights the row of the job shown in the detail panel.
export function markSelected(jobId) {
  state.selectedId = jobId;
  document.querySelectorAll('.job').forEach((b) => b.classList.toggle('selected', b.dataset.jobId === jobId));
}

// Wires the filter chips, the pager and tab visibility; select(jobId) runs when a row is clicked.
export function initJobs({ select }) {
  onSelect = select;
  document.querySelectorAll('#status-filter .chip').forEach((chip) => chip.addEventListener('click', () => {
    filterJobs(chip.dataset.status);
  }));
  $('prev-page').addEventListener('click', () => { state.skip = Math.max(0, state.skip - PAGE_SIZE); refreshList(); });
  $('next-page').addEventListener('click', () => { state.skip += PAGE_SIZE; refreshList(); });
  document.addEventListener('visibilitychange', onVisibility);
}
