// "Custom outputs" in the New job form: an outputs builder (add an output, pick its type, fill in the
// common fields) and, as the advanced view, the same outputs as JSON. The two stay in sync: every
// change in the builder rewrites the JSON; JSON that parses to a list of outputs redraws the builder.
// Fields the builder has no input for (written in the JSON) are kept as they are.
import { el, show } from './dom.js';

// The common fields of each type, as [key, label, kind, choices or hint]. The API checks every value
// and names the accepted ones in its answer; the builder only helps write a first job.
const TYPES = {
  video: { label: 'Video file', fields: [['format', 'Format', 'choice', ['mp4', 'webm', 'mov', 'mkv']], ['height', 'Height (px)', 'number', 'source'], ['video.crf', 'Quality (CRF, lower is better)', 'number', '23']] },
  audio: { label: 'Audio file', fields: [['format', 'Format', 'choice', ['mp3', 'm4a', 'opus', 'flac', 'wav']]] },
  hls: { label: 'HLS stream (adaptive, for players)', fields: [['segment_seconds', 'Segment length (s)', 'number', '4']] },
  dash: { label: 'DASH stream (adaptive, for players)', fields: [['segment_seconds', 'Segment length (s)', 'number', '4']] },
  thumbnails: { label: 'Thumbnails (still pictures)', fields: [['count', 'How many', 'number', '1'], ['width', 'Width (px)', 'number', 'source']] },
  storyboard: { label: 'Storyboard (scrubbing previews)', fields: [['interval_seconds', 'A tile every (s)', 'number', '5'], ['width', 'Tile width (px)', 'number', '160']] },
  animation: { label: 'Animation (GIF or WebP)', fields: [['format', 'Format', 'choice', ['gif', 'webp']], ['start', 'Start (s)', 'number', '0'], ['duration', 'Length (s)', 'number', '3']] },
  waveform: { label: 'Waveform picture', fields: [['width', 'Width (px)', 'number', '800'], ['height', 'Height (px)', 'number', '160']] },
};
const FIRST = [
  { name: 'web', type: 'video', format: 'mp4', height: 720 },
  { name: 'poster', type: 'thumbnails', count: 1 },
];

const state = { outputs: structuredClone(FIRST), list: null, json: null, jsonNote: null };

export const customOutputs = () => state.outputs;

function getPath(output, path) {
  return path.split('.').reduce((value, key) => (value && typeof value === 'object' ? value[key] : undefined), output);
}

function setPath(output, path, value) {
  const keys = path.split('.');
  const last = keys.pop();
  let target = output;
  for (const key of keys) {
    if (typeof target[key] !== 'object' || target[key] === null) target[key] = {};
    target = target[key];
  }
  if (value === undefined) delete target[last];
  else target[last] = value;
  if (keys.length && Object.keys(target).length === 0) delete output[keys[0]]; // no empty "video": {}
}

function unusedName(type) {
  const taken = new Set(state.outputs.map((o) => o.name));
  for (let i = 1; ; i += 1) {
    const name = i === 1 ? type : `${type}${i}`;
    if (!taken.has(name)) return name;
  }
}

function changed() {
  state.json.value = JSON.stringify(state.outputs, null, 2);
  show(state.jsonNote, false);
}

function input(labelText, control) {
  const wrap = el('label', 'field');
  wrap.append(el('span', 'label', labelText), control);
  return wrap;
}

function fieldControl(output, [key, label, kind, extra], index) {
  let control;
  if (kind === 'choice') {
    control = el('select');
    control.append(...extra.map((choice) => Object.assign(el('option', null, choice.toUpperCase()), { value: choice })));
    control.value = getPath(output, key) ?? extra[0];
  } else {
    control = el('input');
    Object.assign(control, { type: 'number', inputMode: 'decimal', placeholder: extra, min: '0', step: 'any' });
    control.value = getPath(output, key) ?? '';
  }
  control.dataset.testid = `builder-${index}-${key}`;
  control.addEventListener('change', () => {
    const raw = control.value.trim();
    setPath(output, key, raw === '' ? undefined : kind === 'number' ? Number(raw) : raw);
    changed();
  });
  return input(label, control);
}

function outputRow(output, index) {
  const row = el('li', 'builder-output');
  row.dataset.testid = 'builder-output';
  const name = el('input');
  Object.assign(name, { type: 'text', value: output.name || '', spellcheck: false });
  name.dataset.testid = `builder-${index}-name`;
  name.addEventListener('change', () => { output.name = name.value.trim(); changed(); });
  const type = el('select');
  type.append(...Object.entries(TYPES).map(([value, t]) => Object.assign(el('option', null, t.label), { value })));
  type.value = output.type in TYPES ? output.type : 'video';
  type.dataset.testid = `builder-${index}-type`;
  type.addEventListener('change', () => {
    // Another type takes other fields: keep only the name, so nothing of the old type is refused.
    state.outputs[index] = { name: output.name, type: type.value };
    changed();
    redraw();
  });
  const remove = el('button', 'btn btn-ghost btn-sm', 'Remove');
  remove.type = 'button';
  remove.setAttribute('aria-label', `Remove output ${output.name || index + 1}`);
  remove.disabled = state.outputs.length === 1;
  remove.addEventListener('click', () => { state.outputs.splice(index, 1); changed(); redraw(); });
  const head = el('div', 'builder-head');
  head.append(input('Name', name), input('Type', type), remove);
  const fields = el('div', 'builder-fields');
  fields.append(...(TYPES[type.value].fields.map((field) => fieldControl(output, field, index))));
  row.append(head, fields);
  return row;
}

function redraw() {
  state.list.replaceChildren(...state.outputs.map(outputRow));
}

function fromJson() {
  let parsed;
  try {
    parsed = JSON.parse(state.json.value);
  } catch (err) {
    state.jsonNote.textContent = `Not valid JSON yet (${err.message}); the builder shows the last valid outputs.`;
    show(state.jsonNote, true);
    return;
  }
  if (!Array.isArray(parsed) || !parsed.length || !parsed.every((o) => o && typeof o === 'object' && !Array.isArray(o))) {
    state.jsonNote.textContent = 'The outputs are a list of objects: [{"name": "web", "type": "video"}, …]';
    show(state.jsonNote, true);
    return;
  }
  show(state.jsonNote, false);
  state.outputs = parsed;
  redraw();
}

// Builds the builder into `container` (the custom pane of the New job form).
export function initOutputsBuilder(container) {
  state.list = el('ol', 'builder-list');
  state.list.setAttribute('aria-label', 'Outputs');
  const add = el('button', 'btn btn-secondary btn-sm', 'Add an output');
  add.type = 'button';
  add.dataset.testid = 'builder-add';
  add.addEventListener('click', () => {
    state.outputs.push({ name: unusedName('video'), type: 'video' });
    changed();
    redraw();
  });
  const advanced = el('details', 'builder-json');
  const summary = el('summary', null, 'Advanced: the outputs as JSON');
  state.json = el('textarea', 'mono');
  Object.assign(state.json, { rows: 10, spellcheck: false });
  state.json.dataset.testid = 'outputs-json';
  state.json.setAttribute('aria-label', 'The outputs as JSON');
  state.json.addEventListener('input', fromJson);
  state.jsonNote = el('p', 'hint');
  state.jsonNote.dataset.testid = 'outputs-json-note';
  show(state.jsonNote, false);
  advanced.append(summary, state.json, state.jsonNote);
  container.append(state.list, add, advanced);
  changed();
  redraw();
}
