// Turning API values into text: statuses and phases, durations, sizes, times, method labels, the
// status badge and the detail panel's field values. No network access; the only DOM it touches is
// the badge it is given (textContent).

export const FINAL = new Set(['completed', 'failed', 'canceled']);
const PHASES = {
  queued: 'Waiting in the queue',
  downloading: 'Fetching the source',
  probing: 'Inspecting the input',
  encoding: 'Encoding',
  uploading: 'Saving the result',
  done: 'Done',
};
export const FAILED_IN = {
  downloading: 'Failed while fetching the source',
  probing: 'Failed while inspecting the input',
  encoding: 'Failed while encoding',
  uploading: 'Failed while saving the result',
};
export const STATUS_LABELS = {
  queued: 'Queued', processing: 'Processing', completed: 'Completed', failed: 'Failed', canceled: 'Canceled',
};

// The processing methods from GET /methods (submit.js loads them), kept here for their labels.
let methods = [];

export function setMethods(list) { methods = list; }

export function findMethod(name) { return methods.find((m) => m.name === name); }

export function methodLabel(name) {
  const m = findMethod(name);
  return m ? m.label : String(name || '');
}

export function setBadge(badge, status) {
  badge.dataset.status = status;
  badge.textContent = STATUS_LABELS[status] || status;
}

export function baseName(source) {
  const clean = String(source || '').split(/[?#]/)[0].replace(/\/+$/, '');
  const name = clean.slice(clean.lastIndexOf('/') + 1);
  return name || String(source || '');
}

// What a job makes: "Compress → MP4" for a /process job; for a POST /jobs one (no method) its
// template ("template web"), else its outputs ("3 outputs") when known, else "custom outputs".
export function jobMakes(job, separator = ' → ') {
  if (!job.method_name) {
    if (job.template) return `template ${job.template}`;
    const count = Array.isArray(job.outputs) ? job.outputs.length : null;
    return count === null ? 'custom outputs' : `${count} output${count === 1 ? '' : 's'}`;
  }
  return `${methodLabel(job.method_name)}${separator}${String(job.output_format || '').toUpperCase()}`;
}

// A job's title: the source's file name and what is made of it ("clip.mp4 → Compress, MP4").
export function jobTitle(job) {
  return `${baseName(job.source)} → ${jobMakes(job, ', ')}`;
}

// Sizes in binary units (1 KB = 1024 bytes), as the CLI prints them.
export function fmtBytes(n) {
  if (!Number.isFinite(n)) return '';
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

export function fmtDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 1) return '<1 s';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) {
    const m = Math.floor(seconds / 60);
    const s = Math.round(seconds % 60);
    return s ? `${m} min ${s} s` : `${m} min`;
  }
  const h = Math.floor(seconds / 3600);
  return `${h} h ${Math.round((seconds % 3600) / 60)} min`;
}

function parseTime(value) {
  const t = value ? Date.parse(value) : NaN;
  return Number.isFinite(t) ? t : null;
}

export function fmtAgo(value) {
  const t = parseTime(value);
  if (t === null) return '';
  const s = (Date.now() - t) / 1000;
  if (s < 10) return 'just now';
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString();
}

export function fmtTime(value) {
  const t = parseTime(value);
  return t === null ? '' : new Date(t).toLocaleString();
}

export function tookSeconds(job) {
  const start = parseTime(job.started_at) ?? parseTime(job.created_at);
  const end = parseTime(job.completed_at);
  return start !== null && end !== null ? (end - start) / 1000 : null;
}

export function progressLine(job) {
  const parts = [PHASES[job.phase] || job.phase || ''];
  if (job.status === 'processing' && Number.isFinite(job.eta_seconds)) parts.push(`${fmtDuration(job.eta_seconds)} left`);
  if (job.status === 'processing' && Number.isFinite(job.speed) && job.speed > 0) parts.push(`${job.speed.toFixed(1)}×`);
  return parts.filter(Boolean).join(' · ');
}

export function clampPct(value) {
  const n = Number(value);
  return Number.isFinite(n) ? Math.max(0, Math.min(100, Math.round(n))) : 0;
}

// --- the detail panel's field list ---------------------------------------------------------------

export const FIELD_ORDER = [
  ['job_id', 'Job ID'], ['status', 'Status'], ['progress', 'Progress'], ['phase', 'Phase'],
  ['method_name', 'Method'], ['output_format', 'Output format'], ['template', 'Template'], ['source', 'Source'],
  ['created_at', 'Created'], ['started_at', 'Started'], ['completed_at', 'Finished'],
  ['attempts', 'Attempts'], ['eta_seconds', 'ETA'], ['speed', 'Speed'],
  ['output_path', 'Output'], ['log_path', 'Log'], ['error', 'Error'],
];

// Fields other parts of the API add; anything else is shown under its own name.
const EXTRA_LABELS = {
  callback_url: 'Webhook URL',
  callback_progress: 'Webhook progress',
  webhook_attempts: 'Webhook deliveries',
  webhook_last_result: 'Webhook result',
  destination: 'Delivered to',
  downloaded_bytes: 'Source fetched (bytes)',
  source_size_bytes: 'Source size (bytes)',
};

function humanize(key) {
  const words = key.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function fieldLabel(key) { return EXTRA_LABELS[key] || humanize(key); }

// The text for one field of a job, or null when there is nothing to show.
export function fieldValue(key, value, job) {
  if (value === null || value === undefined || value === '') return null;
  if (key.endsWith('_at')) return fmtTime(value) || String(value);
  if (key === 'progress') return `${clampPct(value)}%`;
  if (key === 'phase') return PHASES[value] || String(value);
  if (key === 'status') return STATUS_LABELS[value] || String(value);
  if (key === 'method_name') return `${methodLabel(value)} (${value})`;
  if (key === 'eta_seconds') return job.status === 'processing' ? fmtDuration(Number(value)) : null;
  if (key === 'speed') return `${Number(value).toFixed(2)}× real time`;
  if (key === 'output_format') return String(value).toUpperCase();
  // Where the server keeps the files means nothing to the person looking: the file's name does.
  if (key === 'output_path' || key === 'log_path') return baseName(value);
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}
