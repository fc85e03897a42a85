// The tasks of the shown job (outputs split over workers): one row per task with its worker, status,
// attempts and times, and a bar from its start to its end on the job's own clock, coloured by worker,
// so the spread of the work over the workers shows at a glance. The job's record (GET /jobs/{id})
// comes from record.js; this module only draws it.
// Server text (worker ids, errors, output names) reaches the page through textContent and title only.
import { $, el, show } from './dom.js';
import { STATUS_LABELS, fmtTime } from './format.js';

const WORKER_COLOURS = 8; // .lane-bar[data-colour="0".."7"] in style.css; more workers reuse them

export function resetTasks() {
  $('tasks-body').replaceChildren();
  $('tasks-summary').textContent = '';
  show($('tasks-box'), false);
}

function seconds(value) {
  const t = Date.parse(value);
  return Number.isFinite(t) ? t / 1000 : null;
}

function offset(s) { return `+${s.toFixed(1)} s`; }

// "hostname-pid-abc123" → "pid-abc123": the part that tells workers of one machine apart.
function shortWorker(id) {
  if (!id) return '—';
  const parts = String(id).split('-');
  return parts.length > 2 ? parts.slice(-2).join('-') : String(id);
}

// "chunk #2", "audio", "output web", "rendition stream #1": kinds the page does not know yet show the
// same way. The index only where the job has several tasks of that kind (for that output).
export function taskLabel(task, tasks) {
  const group = (t) => `${t.kind}\u0000${t.output ?? ''}`;
  const parts = [String(task.kind)];
  if (task.output) parts.push(String(task.output));
  if (tasks.filter((t) => group(t) === group(task)).length > 1) parts.push(`#${task.index}`);
  return parts.join(' ');
}

export function renderTasks(job) {
  const tasks = Array.isArray(job.tasks) ? job.tasks : [];
  show($('tasks-box'), tasks.length > 0);
  if (!tasks.length) return;
  const now = Date.now() / 1000;
  const starts = tasks.map((t) => seconds(t.started_at)).filter((s) => s !== null);
  const origin = seconds(job.started_at) ?? (starts.length ? Math.min(...starts) : now);
  const ends = tasks.map((t) => seconds(t.completed_at) ?? (t.started_at ? now : null)).filter((s) => s !== null);
  const span = Math.max(0.001, ...ends.map((e) => e - origin));
  const workers = [...new Set(tasks.map((t) => t.worker_id).filter(Boolean))];

  const summary = $('tasks-summary');
  summary.textContent = `${tasks.length} task${tasks.length === 1 ? '' : 's'} on ${workers.length} worker${workers.length === 1 ? '' : 's'}`;
  summary.dataset.workers = String(workers.length);

  const rows = tasks.map((task) => {
    const row = el('tr');
    row.dataset.testid = 'task-row';
    row.dataset.kind = String(task.kind);
    row.dataset.status = String(task.status);
    const worker = el('td', 'mono', shortWorker(task.worker_id));
    worker.dataset.testid = 'task-worker';
    if (task.worker_id) worker.title = String(task.worker_id);
    const status = el('td', null, STATUS_LABELS[task.status] || String(task.status));
    if (task.error) status.title = String(task.error);
    const start = seconds(task.started_at);
    const end = seconds(task.completed_at);
    const when = el('td', 'lane');
    const time = el('span', 'mono', start === null ? '—' : `${offset(start - origin)} → ${end === null ? '…' : offset(end - origin)}`);
    if (task.started_at) time.title = `${fmtTime(task.started_at)} → ${task.completed_at ? fmtTime(task.completed_at) : 'running'}`;
    when.append(time, lane(task, start, end ?? now, origin, span, workers));
    row.append(el('th', null, taskLabel(task, tasks)), worker, status, el('td', 'num', task.attempts), when);
    return row;
  });
  $('tasks-body').replaceChildren(...rows);
}

// The task's bar on the job's clock, under its times: left = when it started, width = how long it ran (or runs).
function lane(task, start, end, origin, span, workers) {
  const track = el('div', 'lane-track');
  track.setAttribute('aria-hidden', 'true'); // the time column says the same in words
  if (start !== null) {
    const bar = el('div', 'lane-bar');
    bar.dataset.status = String(task.status);
    const index = workers.indexOf(task.worker_id);
    bar.dataset.colour = String(index < 0 ? 0 : index % WORKER_COLOURS);
    bar.style.left = `${(100 * (start - origin)) / span}%`;
    bar.style.width = `${Math.max(0.5, (100 * (end - start)) / span)}%`;
    track.append(bar);
  }
  return track;
}
