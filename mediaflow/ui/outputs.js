// "Many outputs": a job from a template or a JSON list of outputs (POST /jobs), then each output with
// its status, progress and files: players for video and audio (HLS where the browser plays it),
// images for thumbnails, storyboards, animations and waveforms, measured quality (quality.js). Its own card, built here, so the
// rest of the dashboard is untouched. Files load through the job's signed base URL: a <video> or
// <img> cannot send the X-API-Key header. Server text goes in with textContent only.
import { apiJson, apiUrl, errorText } from './api.js';
import { el, show, showAlert } from './dom.js';
import { qualityNode } from './quality.js';

const EXAMPLE = [
  { name: 'web', type: 'video', format: 'mp4', video: { codec: 'h264', crf: 23, height: 720 } },
  { name: 'poster', type: 'thumbnails', count: 3, width: 320 },
];
const FINAL = new Set(['completed', 'failed', 'canceled']);
let following = 0; // the id of the current follow loop; a newer job stops the older loop

function field(labelText, control) {
  const wrap = el('label', 'field');
  wrap.append(el('span', 'label', labelText), control);
  return wrap;
}

function buildCard() {
  const card = el('section', 'card card-outputs');
  card.dataset.testid = 'outputs-card';
  const head = el('div', 'card-head');
  head.append(el('h2', null, 'Many outputs'));
  const form = el('form', 'submit-form');
  form.noValidate = true;
  const source = el('input');
  Object.assign(source, { type: 'text', placeholder: 'https://…, s3://…, upload://… or media/clip.mp4', spellcheck: false });
  source.dataset.testid = 'outputs-source';
  const file = el('input');
  Object.assign(file, { type: 'file', accept: 'video/*,audio/*,.mkv,.mov,.ts,.m4a' });
  file.dataset.testid = 'outputs-file';
  const template = el('select');
  template.dataset.testid = 'outputs-template';
  const spec = el('textarea');
  Object.assign(spec, { rows: 8, spellcheck: false, value: JSON.stringify(EXAMPLE, null, 2) });
  spec.dataset.testid = 'outputs-spec';
  const specField = field('Outputs (JSON, see the README)', spec);
  const error = el('div', 'alert alert-error');
  error.setAttribute('role', 'alert');
  error.dataset.testid = 'outputs-error';
  show(error, false);
  const button = el('button', 'btn btn-primary', 'Start job');
  button.type = 'submit';
  button.dataset.testid = 'outputs-submit';
  const actions = el('div', 'actions');
  actions.append(button);
  const result = el('div', 'outputs-result');
  result.dataset.testid = 'outputs-result';
  form.append(field('Source', source), field('…or upload a file', file), field('Template', template), specField, error, actions);
  card.append(head, form, result);
  template.addEventListener('change', () => show(specField, template.value === ''));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    submit({ source, file, template, spec, error, button, result });
  });
  return { card, template, specField };
}

async function loadTemplates(select, specField) {
  select.replaceChildren(el('option', null, 'Custom outputs (JSON)'));
  select.firstChild.value = '';
  try {
    const { templates } = await apiJson('templates');
    for (const t of templates) {
      const option = el('option', null, `${t.name}${t.description ? ' — ' + t.description : ''}`);
      option.value = t.name;
      select.append(option);
    }
  } catch { /* without templates the JSON field still works */ }
  show(specField, select.value === '');
}

async function submit({ source, file, template, spec, error, button, result }) {
  showAlert(error, '');
  let body;
  try {
    body = template.value ? { template: template.value } : { outputs: JSON.parse(spec.value) };
  } catch (err) {
    showAlert(error, `The outputs are not valid JSON: ${err.message}`);
    return;
  }
  button.disabled = true;
  try {
    let src = source.value.trim();
    if (file.files.length) {
      const form = new FormData();
      form.append('file', file.files[0]);
      src = (await apiJson('upload', { method: 'POST', body: form })).source;
    }
    if (!src) throw new Error('Give a source, or choose a file to upload.');
    const created = await apiJson('jobs', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ source: src, ...body }),
    });
    follow(created.job_id, result);
  } catch (err) {
    showAlert(error, errorText(err));
  } finally {
    button.disabled = false;
  }
}

async function follow(jobId, result) {
  const mine = ++following;
  while (mine === following) {
    let job;
    try {
      job = await apiJson(`jobs/${encodeURIComponent(jobId)}`);
    } catch (err) {
      result.replaceChildren(el('p', 'alert alert-error', errorText(err)));
      return;
    }
    const files = FINAL.has(job.status) ? await signedBase(jobId) : null;
    if (mine !== following) return;
    render(job, files, result);
    if (FINAL.has(job.status)) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

async function signedBase(jobId) {
  try {
    return (await apiJson(`jobs/${encodeURIComponent(jobId)}/files`)).signed_base_url;
  } catch { return null; }
}

function render(job, signed, result) {
  const head = el('p', 'outputs-job');
  head.append(el('strong', null, `Job ${job.job_id.slice(0, 8)}: ${job.status}`), el('span', 'muted', ` ${job.progress}%`));
  head.dataset.testid = 'outputs-job-status';
  const list = el('ul', 'outputs-list');
  for (const output of job.outputs) list.append(renderOutput(output, signed));
  result.replaceChildren(head, ...(job.error ? [el('p', 'alert alert-error', job.error)] : []), list);
}

function renderOutput(output, signed) {
  const item = el('li', 'output');
  item.dataset.testid = `output-${output.name}`;
  item.dataset.status = output.status;
  item.append(el('strong', null, `${output.name} `), el('span', 'muted', `${output.type} · ${output.status}`));
  if (output.status === 'processing') {
    const bar = el('progress');
    Object.assign(bar, { max: 100, value: output.progress });
    item.append(bar);
  }
  if (output.error) item.append(el('p', 'alert alert-error', output.error));
  if (output.quality) item.append(qualityNode(output, signed, apiUrl));
  if (signed && output.status === 'completed') item.append(...output.files.map((f) => preview(f, apiUrl(signed + f.path))));
  return item;
}

function preview(file, url) {
  const mime = file.mime_type;
  let node;
  if (mime.startsWith('image/')) {
    node = el('img', 'output-image');
    Object.assign(node, { src: url, alt: file.path, loading: 'lazy' });
  } else if (mime === 'application/vnd.apple.mpegurl' && file.path.endsWith('master.m3u8')) {
    const probe = document.createElement('video');
    if (probe.canPlayType(mime)) node = Object.assign(el('video', 'output-video'), { src: url, controls: true, preload: 'metadata' });
  } else if (mime.startsWith('video/') && !file.path.endsWith('.ts')) {
    node = Object.assign(el('video', 'output-video'), { src: url, controls: true, preload: 'metadata' });
  } else if (mime.startsWith('audio/')) {
    node = Object.assign(el('audio'), { src: url, controls: true, preload: 'metadata' });
  }
  if (node) Object.assign(node.style, { display: 'block', maxWidth: '100%', margin: '4px 0' }); // inline: this card brings no stylesheet
  const wrap = el('div', 'output-file');
  const link = el('a', null, `${file.path} (${Math.max(1, Math.round(file.size / 1024))} KB)`);
  Object.assign(link, { href: url, target: '_blank', rel: 'noopener' });
  wrap.append(...(node ? [node] : []), link);
  return wrap;
}

export function initOutputs() {
  const column = document.querySelector('.col-left');
  if (!column) return;
  const { card, template, specField } = buildCard();
  column.append(card);
  loadTemplates(template, specField);
}
