// The "New job" form: the source (upload, or a server path / S3 URI), then what to make: one of the
// methods from GET /methods with its format (POST /process), a template from GET /templates, or
// custom outputs (outputs_form.js; both POST /jobs). The upload has its progress bar (XMLHttpRequest);
// the new job is selected.
import { ApiError, apiJson, apiKey, apiUrl, describeError, errorText, needKey } from './api.js';
import { selectJob } from './detail.js';
import { $, el, show, showAlert } from './dom.js';
import { baseName, clampPct, findMethod, fmtBytes, fmtDuration, methodLabel, setMethods } from './format.js';
import { filterJobs, renderList } from './jobs.js';
import { customOutputs, initOutputsBuilder } from './outputs_form.js';

const TEMPLATE = 'template:'; // the select's value for a template is "template:NAME"; a method's is its name
const CUSTOM = 'custom';
let templates = []; // GET /templates, less the ones that are the methods themselves

const state = {
  mode: 'upload',
  file: null,
  uploaded: null, // {file, source}: a file already uploaded is not sent again if /process is retried
};

function option(label, value) {
  const node = el('option', null, label);
  node.value = value;
  return node;
}

function group(label, options) {
  const node = el('optgroup');
  node.label = label;
  node.append(...options);
  return node;
}

export async function loadMethods() {
  try {
    const data = await apiJson('methods');
    const methods = Array.isArray(data.methods) ? data.methods : [];
    setMethods(methods);
    // Templates are a bonus: without them (an older server) the methods still work.
    const listed = await apiJson('templates').then((t) => t.templates || [], () => []);
    templates = listed.filter((t) => !methods.some((m) => m.name === t.name));
    const select = $('method-select');
    const previous = select.value;
    select.replaceChildren(
      group('One file', methods.map((m) => option(m.label, m.name))),
      ...(templates.length ? [group('Several files (templates)', templates.map((t) => option(t.name, TEMPLATE + t.name)))] : []),
      group('Your own', [option('Custom outputs…', CUSTOM)]),
    );
    if ([...select.options].some((o) => o.value === previous)) select.value = previous;
    onMethodChange();
    renderList(); // labels
    showAlert($('submit-error'), '');
  } catch (err) {
    if (err.status === 401) {
      showMethodsPrompt('Enter the API key (above) to load the methods');
    } else {
      showMethodsPrompt('Methods unavailable');
      showAlert($('submit-error'), `Could not load the processing methods: ${errorText(err)}`);
    }
  }
}

// Until GET /methods answers, the menus say why they are empty instead of being blank.
function showMethodsPrompt(text) {
  setMethods([]);
  const placeholder = (label) => {
    const option = el('option', null, label);
    option.value = '';
    option.disabled = true;
    option.selected = true;
    return option;
  };
  $('method-select').replaceChildren(placeholder(text));
  $('format-select').replaceChildren(placeholder('—'));
  $('method-desc').textContent = '';
}

const TYPE_WORDS = { thumbnails: 'thumbnails', storyboard: 'a storyboard', hls: 'an HLS stream', dash: 'a DASH stream', video: 'a video', audio: 'an audio file', animation: 'an animation', waveform: 'a waveform' };

// "Makes web (a video) and poster (thumbnails)."
function templateMakes(template) {
  const parts = (template.outputs || []).map((o) => `${o.name} (${TYPE_WORDS[o.type] || o.type})`);
  if (!parts.length) return '';
  const list = parts.length > 1 ? `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}` : parts[0];
  return ` Makes ${list}.`;
}

function onMethodChange() {
  const choice = $('method-select').value;
  const template = choice.startsWith(TEMPLATE) ? templates.find((t) => TEMPLATE + t.name === choice) : null;
  show($('format-field'), !template && choice !== CUSTOM);
  show($('custom-pane'), choice === CUSTOM);
  if (template) {
    $('method-desc').textContent = `${template.description}${templateMakes(template)}`.trim();
    return;
  }
  if (choice === CUSTOM) {
    $('method-desc').textContent = 'Say what to make: add outputs below, or write them as JSON (Advanced).';
    return;
  }
  const method = findMethod(choice);
  const select = $('format-select');
  const formats = method ? method.formats : [];
  const previous = select.value;
  select.replaceChildren(...formats.map((f) => {
    const option = el('option', null, f === method.default_format ? `${f.toUpperCase()} (default)` : f.toUpperCase());
    option.value = f;
    return option;
  }));
  select.value = formats.includes(previous) ? previous : (method ? method.default_format : '');
  $('method-desc').textContent = method ? method.description : '';
}

function setMode(mode, { focus = false } = {}) {
  state.mode = mode;
  document.querySelectorAll('.seg').forEach((button) => {
    const active = button.dataset.mode === mode;
    button.classList.toggle('active', active);
    button.setAttribute('aria-selected', String(active));
    button.tabIndex = active ? 0 : -1; // one tab stop for the tab list; the arrow keys move inside it
    if (active && focus) button.focus();
  });
  document.querySelectorAll('.mode-pane').forEach((pane) => show(pane, pane.dataset.pane === mode));
}

function setFile(file) {
  state.file = file || null;
  const label = $('dz-file');
  if (state.file) {
    label.replaceChildren(document.createTextNode(state.file.name + ' '), el('span', 'muted', `(${fmtBytes(state.file.size)})`));
    $('dz-text').replaceChildren(el('strong', null, 'Choose another file'), document.createTextNode(' or drop it here'));
  } else {
    label.replaceChildren();
    $('dz-text').replaceChildren(el('strong', null, 'Choose a video'), document.createTextNode(' or drop it here'));
  }
  show(label, Boolean(state.file));
  showAlert($('submit-error'), '');
}

function setUploadProgress(loaded, total, startedAt) {
  const pct = total ? clampPct((loaded / total) * 100) : 0;
  $('upload-bar').style.width = `${pct}%`;
  $('upload-track').setAttribute('aria-valuenow', String(pct));
  $('upload-pct').textContent = `${pct}%`;
  const seconds = (performance.now() - startedAt) / 1000;
  const rate = seconds > 0.2 ? loaded / seconds : 0;
  let text = `Uploading ${fmtBytes(loaded)} of ${fmtBytes(total)}`;
  if (rate > 0 && loaded < total) text += ` · ${fmtBytes(rate)}/s · ${fmtDuration((total - loaded) / rate)} left`;
  if (loaded >= total) text = `Uploaded ${fmtBytes(total)}, starting the job…`;
  $('upload-text').textContent = text;
}

// XMLHttpRequest rather than fetch: it reports upload progress.
function uploadFile(file) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    const startedAt = performance.now();
    xhr.open('POST', apiUrl('upload'));
    const key = apiKey();
    if (key) xhr.setRequestHeader('X-API-Key', key);
    show($('upload-progress'), true);
    $('upload-progress').dataset.status = 'processing';
    setUploadProgress(0, file.size, startedAt);
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) setUploadProgress(event.loaded, event.total, startedAt);
    };
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        setUploadProgress(file.size, file.size, startedAt);
        $('upload-progress').dataset.status = 'completed';
        try { resolve(JSON.parse(xhr.responseText)); } catch { reject(new ApiError(xhr.status, 'The server sent an unreadable answer to the upload.')); }
        return;
      }
      const message = describeError(xhr.status, xhr.responseText);
      if (xhr.status === 401) needKey(message);
      $('upload-progress').dataset.status = 'failed';
      reject(new ApiError(xhr.status, xhr.status === 413 ? `The file is too large: ${message}` : message));
    };
    xhr.onerror = () => {
      $('upload-progress').dataset.status = 'failed';
      reject(new ApiError(0, 'The upload failed: the connection to the server was lost.'));
    };
    const form = new FormData();
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

async function onSubmit(event) {
  event.preventDefault();
  showAlert($('submit-error'), '');
  showAlert($('submit-ok'), '');
  const button = $('submit-button');
  const method = $('method-select').value;
  const format = $('format-select').value;
  if (!method) {
    showAlert($('submit-error'), 'No processing method is available yet: the server did not answer GET /methods.');
    return;
  }
  button.disabled = true;
  try {
    let source;
    if (state.mode === 'upload') {
      if (!state.file) throw new ApiError(0, 'Choose a file to upload first.');
      if (state.uploaded && state.uploaded.file === state.file) {
        source = state.uploaded.source;
      } else {
        button.textContent = 'Uploading…';
        const answer = await uploadFile(state.file);
        source = answer.source;
        state.uploaded = { file: state.file, source };
      }
    } else {
      source = $('source-input').value.trim();
      if (!source) throw new ApiError(0, 'Type a source: an https:// link, an s3:// URI or a path on the server.');
    }
    button.textContent = 'Starting…';
    const { path, body, what } = jobRequest(source, method, format);
    const job = await apiJson(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    // Says what was sent, not the job's state: that is in the job panel, and would soon be out of date here.
    const ok = $('submit-ok');
    const note = `Submitted ${baseName(source)} → ${what}. Its progress is in the job panel.`;
    ok.textContent = note;
    show(ok, true);
    setTimeout(() => { if (ok.textContent === note) show(ok, false); }, 4000);
    if (state.mode === 'upload') {
      $('file-input').value = '';
      setFile(null);
      state.uploaded = null;
      setTimeout(() => show($('upload-progress'), false), 1500);
    }
    filterJobs('');
    selectJob(job.job_id);
    bringDetailIntoView();
  } catch (err) {
    showAlert($('submit-error'), errorText(err));
  } finally {
    button.disabled = false;
    button.textContent = 'Start processing';
  }
}

// What to send for the choice in "What to make": POST /process for a method, POST /jobs otherwise.
function jobRequest(source, choice, format) {
  if (choice.startsWith(TEMPLATE)) {
    const name = choice.slice(TEMPLATE.length);
    return { path: 'jobs', body: { source, template: name }, what: `template ${name}` };
  }
  if (choice === CUSTOM) {
    const outputs = customOutputs();
    return { path: 'jobs', body: { source, outputs }, what: `${outputs.length} output${outputs.length === 1 ? '' : 's'}` };
  }
  const body = { source, method_name: choice };
  if (format) body.output_format = format;
  return { path: 'process', body, what: methodLabel(choice) };
}

// One column (a phone): the job panel is below the form and the list; take the reader there, since
// the progress would otherwise be a screen or two down with nothing to say so.
function bringDetailIntoView() {
  if (!window.matchMedia('(max-width: 900px)').matches) return;
  const reduced = window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  $('detail').scrollIntoView({ behavior: reduced ? 'auto' : 'smooth', block: 'start' });
  $('detail').focus({ preventScroll: true });
}

function onTabKey(event) {
  const order = ['upload', 'source'];
  const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
  if (step === undefined && event.key !== 'Home' && event.key !== 'End') return;
  event.preventDefault();
  let next;
  if (event.key === 'Home') next = order[0];
  else if (event.key === 'End') next = order[order.length - 1];
  else next = order[(order.indexOf(state.mode) + step + order.length) % order.length];
  setMode(next, { focus: true });
}

// Wires the source tabs, the file chooser and drop zone, the method select and the form.
export function initSubmit() {
  document.querySelectorAll('.seg').forEach((button) => {
    button.addEventListener('click', () => setMode(button.dataset.mode));
    button.addEventListener('keydown', onTabKey);
  });
  $('file-input').addEventListener('change', (event) => setFile(event.target.files[0]));
  const zone = $('dropzone');
  zone.addEventListener('dragover', (event) => { event.preventDefault(); zone.classList.add('dragging'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('dragging'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    if (event.dataTransfer && event.dataTransfer.files.length) setFile(event.dataTransfer.files[0]);
  });
  $('method-select').addEventListener('change', onMethodChange);
  initOutputsBuilder($('custom-pane'));
  $('submit-form').addEventListener('submit', onSubmit);
}
