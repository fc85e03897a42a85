// The shown job's outputs, from its record (GET /jobs/{id}, record.js): each output with its status,
// progress, notes and error, its measured quality (quality.js), what fits its files (players.js: a
// player for video, HLS and audio, pictures for thumbnails, storyboard, animation and waveform, the
// storyboard as a scrubbing preview under the job's first player) and a link to every file.
// Items are keyed by output name and updated in place, so a playing video is never rebuilt by an update.
// Server text reaches the page through textContent only.
import { $, el, show } from './dom.js';
import { STATUS_LABELS, clampPct, fmtBytes, setBadge } from './format.js';
import {
  attachScrubber, audioPlayer, dashPlayer, hlsPlayer, image, stopPlayers, storyboardCues, videoPlayer,
} from './players.js';
import { qualityNode } from './quality.js';
import { apiUrl } from './api.js';
import { expiresSoon, signedBase } from './record.js';

const TYPE_LABELS = {
  video: 'Video', audio: 'Audio', hls: 'HLS stream', dash: 'DASH stream', thumbnails: 'Thumbnails',
  storyboard: 'Storyboard', animation: 'Animation', waveform: 'Waveform',
};
const state = { jobId: null, items: new Map(), scrubbed: false };

export function resetOutputs() {
  state.jobId = null;
  state.items.clear();
  state.scrubbed = false;
  stopPlayers();
  $('outputs-list').querySelectorAll('video, audio').forEach((media) => { media.pause(); media.removeAttribute('src'); media.load(); });
  $('outputs-list').replaceChildren();
  $('outputs-summary').textContent = '';
  show($('outputs-box'), false);
}

// options.mediaInPanel: the job's one file plays in the panel's own player (detail.js), so its card
// lists the file without a second player.
export function renderOutputs(record, signed, { mediaInPanel = false } = {}) {
  if (state.jobId !== record.job_id) {
    resetOutputs();
    state.jobId = record.job_id;
  }
  const outputs = Array.isArray(record.outputs) ? record.outputs : [];
  show($('outputs-box'), outputs.length > 0);
  if (!outputs.length) return;
  const done = outputs.filter((o) => o.status === 'completed').length;
  $('outputs-summary').textContent = `${done} of ${outputs.length} made`;
  const list = $('outputs-list');
  outputs.forEach((output, index) => {
    let item = state.items.get(output.name);
    if (!item) {
      item = buildItem(output);
      state.items.set(output.name, item);
    }
    updateItem(item, output, record);
    if (signed && output.status === 'completed' && !item.filesShown) showFiles(item, output, signed, mediaInPanel, record.job_id);
    if (list.children[index] !== item.node) list.insertBefore(item.node, list.children[index] || null);
  });
  attachStoryboard(record, signed);
}

function buildItem(output) {
  const node = el('li', 'output-item');
  node.dataset.testid = `output-${output.name}`;
  const head = el('div', 'output-head');
  const title = el('div', 'output-title');
  title.append(el('strong', null, output.name), el('span', 'muted small', TYPE_LABELS[output.type] || output.type));
  const badge = el('span', 'badge');
  badge.dataset.testid = 'output-status';
  head.append(title, badge);
  const progress = el('div', 'output-progress');
  const track = el('div', 'progress');
  track.setAttribute('role', 'progressbar');
  track.setAttribute('aria-valuemin', '0');
  track.setAttribute('aria-valuemax', '100');
  track.setAttribute('aria-label', `Progress of ${output.name}`);
  track.append(el('div', 'bar'));
  const text = el('span', 'muted small');
  text.dataset.testid = 'output-progress';
  progress.append(track, text);
  const notes = el('ul', 'output-notes');
  const error = el('p', 'alert alert-error');
  error.dataset.testid = 'output-error';
  const quality = el('div', 'output-quality-slot');
  const media = el('div', 'output-media');
  const files = el('ul', 'output-files');
  files.dataset.testid = 'output-files';
  node.append(head, progress, error, notes, quality, media, files);
  return { node, badge, progress, track, text, notes, error, quality, media, files, filesShown: false, qualityShown: false };
}

// "Waiting for a worker" rather than "Processing" while every task of the output is still queued.
function waitingForWorkers(output, record) {
  const tasks = (record.tasks || []).filter((t) => !t.output || t.output === output.name);
  return output.status === 'processing' && tasks.length > 0 && tasks.every((t) => t.status === 'queued');
}

function updateItem(item, output, record) {
  item.node.dataset.status = output.status;
  setBadge(item.badge, output.status);
  const active = output.status === 'processing' || output.status === 'queued';
  show(item.progress, active);
  if (active) {
    const pct = clampPct(output.progress);
    item.progress.dataset.status = output.status;
    item.track.firstChild.style.width = `${pct}%`;
    item.track.setAttribute('aria-valuenow', String(pct));
    const words = waitingForWorkers(output, record) ? 'Waiting for a worker' : STATUS_LABELS[output.status];
    item.text.textContent = output.status === 'queued' ? 'Waiting for its turn' : `${words} · ${pct}%`;
  }
  item.error.textContent = output.error || '';
  show(item.error, Boolean(output.error));
  const notes = Array.isArray(output.notes) ? output.notes : [];
  if (item.notes.childElementCount !== notes.length) item.notes.replaceChildren(...notes.map((n) => el('li', null, n)));
  show(item.notes, notes.length > 0);
}

function fileUrl(signed, path) { return apiUrl(signed.replace(/^\//, '') + path); }

// A link whose signed token is about to expire (the page was left open) is followed with a new one.
async function renewBeforeFollowing(event, link, jobId, signed, file) {
  if (!expiresSoon(signed) || link.dataset.renewed) return;
  event.preventDefault();
  try {
    link.href = fileUrl(await signedBase(jobId), file.path);
  } catch { /* the old link then says why it no longer works */ }
  link.dataset.renewed = 'yes'; // this click goes through; the next one checks again
  link.click();
  delete link.dataset.renewed;
}

function showFiles(item, output, signed, mediaInPanel, jobId) {
  item.filesShown = true;
  const files = Array.isArray(output.files) ? output.files : [];
  const url = (file) => fileUrl(signed, file.path);
  if (output.quality) item.quality.replaceChildren(qualityNode(output, (file) => url(file)));
  if (!mediaInPanel) for (const preview of previews(output, files, url)) item.media.append(preview.node);
  item.files.replaceChildren(...files.map((file) => {
    const link = el('a', 'mono', file.path);
    Object.assign(link, { href: url(file), download: file.path.split('/').pop() });
    link.addEventListener('click', (event) => renewBeforeFollowing(event, link, jobId, signed, file));
    const li = el('li');
    li.append(link, el('span', 'muted small', ` ${fmtBytes(file.size)}`));
    return li;
  }));
  if (output.segments) {
    item.files.append(el('li', 'muted small', `+ ${output.segments.count} media segments (${fmtBytes(output.segments.bytes)})`));
  }
}

function previews(output, files, url) {
  const label = `${output.name} (${TYPE_LABELS[output.type] || output.type})`;
  const byMime = (test) => files.filter((f) => test(String(f.mime_type || ''), f.path));
  if (output.type === 'hls') {
    const master = files.find((f) => f.path.endsWith('/master.m3u8')) || files.find((f) => f.path.endsWith('.m3u8'));
    return master ? [hlsPlayer(url(master), label)] : [];
  }
  if (output.type === 'dash') {
    const manifest = files.find((f) => f.path.endsWith('.mpd'));
    return manifest ? [dashPlayer(url(manifest), label)] : [];
  }
  const videos = byMime((mime, path) => mime.startsWith('video/') && !path.endsWith('.ts')).map((f) => videoPlayer(url(f), label));
  const audios = byMime((mime) => mime.startsWith('audio/')).map((f) => audioPlayer(url(f), label));
  const images = byMime((mime) => mime.startsWith('image/')).map((f, i, all) => ({
    node: image(url(f), all.length > 1 ? `${label}, picture ${i + 1} of ${all.length}` : label),
  }));
  return [...videos, ...audios, ...(images.length ? [{ node: gallery(images) }] : [])];
}

function gallery(images) {
  const wrap = el('div', 'output-gallery');
  wrap.append(...images.map((i) => i.node));
  return wrap;
}

// The storyboard's tiles as a scrubbing preview under the job's first player, once both are there.
async function attachStoryboard(record, signed) {
  if (state.scrubbed || !signed) return;
  const board = record.outputs.find((o) => o.type === 'storyboard' && o.status === 'completed');
  const player = $('outputs-list').querySelector('video');
  const vtt = board && board.files.find((f) => f.path.endsWith('.vtt'));
  if (!vtt || !player) return;
  state.scrubbed = true;
  const jobId = record.job_id;
  const folder = vtt.path.slice(0, vtt.path.lastIndexOf('/') + 1); // the sprites sit beside their WebVTT
  try {
    const answer = await fetch(fileUrl(signed, vtt.path));
    const cues = storyboardCues(answer.ok ? await answer.text() : '');
    if (cues.length && state.jobId === jobId) attachScrubber(player, cues, (file) => fileUrl(signed, folder + file));
  } catch { /* the player works without its preview */ }
}
