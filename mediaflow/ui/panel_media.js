// The panel's own player and the ffmpeg log: the player for a job whose one file is a video or a
// sound (from /download/{id}, as a seed job always had), and the log of the job's last run. Each
// remembers which job it shows, so a late answer for a job no longer shown is dropped.
import { apiFetch, apiJson, apiKey, apiUrl, errorText } from './api.js';
import { $, el, show } from './dom.js';

const enc = encodeURIComponent;
const state = { playerFor: null, logFor: null };

export const playerShownFor = (jobId) => state.playerFor === jobId;
export const logShownFor = (jobId) => state.logFor === jobId;

export function resetPlayerAndLog() {
  state.playerFor = null;
  state.logFor = null;
  const player = $('player');
  player.querySelectorAll('video, audio').forEach((media) => { media.pause(); media.removeAttribute('src'); media.load(); });
  player.replaceChildren();
  show(player, false);
  $('log-text').textContent = '';
  show($('log-box'), false);
}

export function showPlayer(job, { audio, format }) {
  state.playerFor = job.job_id;
  const player = $('player');
  player.classList.toggle('audio', audio);
  player.replaceChildren();
  show(player, true);
  const media = document.createElement(audio ? 'audio' : 'video');
  media.controls = true;
  media.preload = 'metadata';
  media.dataset.testid = 'player-media';
  if (!audio) media.playsInline = true;
  media.addEventListener('error', async () => {
    // A media element reports "cannot load" the same way for a network failure and for a format it
    // cannot decode: ask the server whether it is there before blaming the format.
    const reachable = await fetch(apiUrl('healthz'), { cache: 'no-store' }).then((r) => r.ok, () => false);
    if (state.playerFor !== job.job_id) return;
    const note = el('div', 'player-note', reachable
      ? `This browser cannot play the ${String(format).toUpperCase()} file; use Download instead.`
      : 'The preview stopped: the MediaFlow server cannot be reached. Check that it is running, then reload the page.');
    note.dataset.testid = 'player-note';
    note.dataset.reason = reachable ? 'format' : 'network';
    player.classList.add('audio');
    player.replaceChildren(note);
  });
  player.append(media);
  // With an API key the media element cannot send the header: it gets a signed link instead, and
  // still streams and seeks (Range requests) rather than loading the whole file first.
  downloadUrl(job).then((url) => {
    if (state.playerFor === job.job_id) media.src = url;
  }).catch((err) => {
    player.classList.add('audio');
    player.replaceChildren(el('div', 'player-note', `Could not load the preview: ${errorText(err)}`));
  });
}

// The output's URL: the plain download path when the API is open, else a signed, expiring link
// (GET /jobs/{id}/download-url) that works without the key header.
export async function downloadUrl(job) {
  const path = `download/${enc(job.job_id)}`;
  if (!apiKey()) return apiUrl(path);
  const link = await apiJson(`jobs/${enc(job.job_id)}/download-url`, { cache: 'no-store' });
  return apiUrl(link.url.replace(/^\//, ''));
}

export async function loadLog(job) {
  state.logFor = job.job_id;
  const box = $('log-box');
  try {
    const text = await (await apiFetch(`jobs/${enc(job.job_id)}/log`, { cache: 'no-store' })).text();
    if (state.logFor !== job.job_id) return;
    $('log-text').textContent = text.length > 200000 ? `…${text.slice(-200000)}` : text;
    box.open = job.status === 'failed';
    show(box, true);
  } catch (err) {
    if (state.logFor !== job.job_id) return;
    $('log-text').textContent = `The log could not be loaded: ${errorText(err)}`;
    show(box, job.status === 'failed');
  }
}
