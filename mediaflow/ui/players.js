// What fits each file of an output: a player for video, HLS and audio, the picture for images, and a
// storyboard's scrubbing preview under a player. URLs are signed links (record.js), since a <video>
// or <img> cannot send the X-API-Key header; a playlist's relative URIs resolve under the same link.
// HLS plays natively where the browser can (Safari, Chromium); elsewhere through hls.js. DASH plays
// through dash.js. Both are served by this server from the npm packages scripts/setup.sh installs
// (never a CDN: the dashboard works offline), loaded only when a stream needs them.
import { el } from './dom.js';

const HLS_MIME = 'application/vnd.apple.mpegurl';
const scripts = new Map(); // one load per player script and page, shared by every player
const engines = new Set(); // hls.js and dash.js instances of the players on the page

// Stops every stream player (their engines keep fetching segments otherwise): the shown job changed.
export function stopPlayers() {
  engines.forEach((engine) => engine.destroy());
  engines.clear();
}

// vendor/<file>, which sets window[global]; rejects with the reason to show.
function loadVendor(file, global, name) {
  if (window[global]) return Promise.resolve(window[global]);
  if (!scripts.has(file)) {
    scripts.set(file, new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = `vendor/${file}`;
      script.onload = () => (window[global] ? resolve(window[global]) : reject(new Error(`${name} did not load`)));
      script.onerror = () => { scripts.delete(file); reject(new Error(`this server has no ${name} (scripts/setup.sh installs it)`)); };
      document.head.append(script);
    }));
  }
  return scripts.get(file);
}

function note(text) {
  const node = el('p', 'player-note', text);
  node.dataset.testid = 'output-player-note';
  return node;
}

function videoElement(label) {
  const video = el('video', 'output-video');
  Object.assign(video, { controls: true, preload: 'metadata', playsInline: true });
  video.setAttribute('aria-label', label);
  return video;
}

// An HLS master playlist: natively if the browser says it may play it, else through hls.js.
export function hlsPlayer(url, label) {
  const wrap = el('div', 'output-player');
  const video = videoElement(label);
  video.dataset.testid = 'hls-player';
  wrap.append(video);
  if (video.canPlayType(HLS_MIME)) {
    video.dataset.engine = 'native';
    video.src = url;
    return { node: wrap, video };
  }
  video.dataset.engine = 'hls.js';
  loadVendor('hls.min.js', 'Hls', 'hls.js').then((Hls) => {
    if (!Hls.isSupported()) throw new Error('this browser has no Media Source Extensions');
    if (!video.isConnected) return; // another job was shown while hls.js loaded
    const hls = new Hls();
    engines.add(hls);
    hls.loadSource(url);
    hls.attachMedia(video);
  }).catch((err) => {
    wrap.replaceChildren(note(`This browser cannot play HLS by itself, and ${err.message}: open the playlist in a player such as VLC, or download the files.`));
  });
  return { node: wrap, video };
}

// A DASH manifest, through dash.js (no browser plays DASH by itself).
export function dashPlayer(url, label) {
  const wrap = el('div', 'output-player');
  const video = videoElement(label);
  video.dataset.testid = 'dash-player';
  video.dataset.engine = 'dash.js';
  wrap.append(video);
  loadVendor('dash.all.min.js', 'dashjs', 'dash.js').then((dashjs) => {
    if (!window.MediaSource) throw new Error('this browser has no Media Source Extensions');
    if (!video.isConnected) return; // another job was shown while dash.js loaded
    const player = dashjs.MediaPlayer().create();
    engines.add({ destroy: () => player.reset() });
    player.initialize(video, url, false);
  }).catch((err) => {
    wrap.replaceChildren(note(`The DASH stream cannot play here: ${err.message}. Open the manifest in a DASH player, or download the files.`));
  });
  return { node: wrap, video };
}

export function videoPlayer(url, label) {
  const video = videoElement(label);
  video.src = url;
  const wrap = el('div', 'output-player');
  wrap.append(video);
  return { node: wrap, video };
}

export function audioPlayer(url, label) {
  const audio = el('audio', 'output-audio');
  Object.assign(audio, { controls: true, preload: 'metadata', src: url });
  audio.setAttribute('aria-label', label);
  return { node: audio, video: null };
}

export function image(url, alt) {
  const img = el('img', 'output-image');
  Object.assign(img, { src: url, alt, loading: 'lazy' });
  return img;
}

// --- the storyboard's scrubbing preview -----------------------------------------------------------------

function vttSeconds(text) {
  const parts = text.trim().split(':').map(Number);
  return parts.reduce((total, part) => total * 60 + part, 0);
}

// "00:00:05.000 --> 00:00:10.000" then "sprite_001.jpg#xywh=160,0,160,90": {start, end, file, x, y, w, h}.
export function storyboardCues(text) {
  const cues = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length - 1; i += 1) {
    const times = /^(\S+)\s+-->\s+(\S+)/.exec(lines[i]);
    const place = times && /^([^#\s]+)#xywh=(\d+),(\d+),(\d+),(\d+)$/.exec(lines[i + 1].trim());
    if (!place) continue;
    const [x, y, w, h] = place.slice(2).map(Number);
    cues.push({ start: vttSeconds(times[1]), end: vttSeconds(times[2]), file: place[1], x, y, w, h });
  }
  return cues;
}

// A strip under the player: hovering shows the storyboard tile of that moment, a click seeks there.
// Pointer-only on purpose (aria-hidden, not focusable): the player's own controls seek from the keyboard.
export function attachScrubber(video, cues, spriteUrl) {
  const strip = el('div', 'scrub');
  strip.setAttribute('aria-hidden', 'true');
  strip.dataset.testid = 'scrub-strip';
  const tile = el('div', 'scrub-tile');
  tile.hidden = true;
  const time = el('span', 'scrub-time');
  tile.append(time);
  strip.append(tile);
  const duration = () => (Number.isFinite(video.duration) ? video.duration : cues[cues.length - 1].end);
  const at = (event) => {
    const box = strip.getBoundingClientRect();
    const fraction = Math.min(1, Math.max(0, (event.clientX - box.left) / box.width));
    return { seconds: fraction * duration(), left: event.clientX - box.left };
  };
  strip.addEventListener('pointermove', (event) => {
    const { seconds, left } = at(event);
    const cue = cues.find((c) => seconds >= c.start && seconds < c.end) || cues[cues.length - 1];
    Object.assign(tile.style, {
      width: `${cue.w}px`, height: `${cue.h}px`, left: `${Math.max(0, left - cue.w / 2)}px`,
      backgroundImage: `url("${spriteUrl(cue.file)}")`, backgroundPosition: `-${cue.x}px -${cue.y}px`,
    });
    time.textContent = `${seconds.toFixed(1)} s`;
    tile.dataset.file = cue.file;
    tile.hidden = false;
  });
  strip.addEventListener('pointerleave', () => { tile.hidden = true; });
  strip.addEventListener('click', (event) => { video.currentTime = at(event).seconds; });
  video.parentElement.append(strip);
  return strip;
}
