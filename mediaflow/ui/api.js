// API access: the base URL, the API key (kept in this browser's localStorage) and the prompt that
// asks for it, fetch with the X-API-Key header, and readable sentences from the API's error answers.
import { $, setConn, show } from './dom.js';

const API_BASE = new URL('../', location.href); // the dashboard lives at <api>/ui/
const KEY_STORAGE = 'mediaflow.apiKey';
// What the server said about the saved key: 'unknown' until a call with it answers, then 'ok' or 'refused'.
let keyVerdict = 'unknown';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export function apiKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ''; } catch { return ''; }
}

function setApiKey(key) {
  keyVerdict = 'unknown';
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch { /* storage disabled: the key lasts until reload */ }
  renderKeyButton();
}

export const apiUrl = (path) => new URL(path, API_BASE).toString();

function withKey(headers) {
  const h = new Headers(headers || {});
  const key = apiKey();
  if (key) h.set('X-API-Key', key);
  return h;
}

export async function apiFetch(path, options = {}) {
  let res;
  try {
    res = await fetch(apiUrl(path), { ...options, headers: withKey(options.headers) });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'Cannot reach the MediaFlow server. Is it running?');
  }
  if (!res.ok) {
    const message = describeError(res.status, await res.text().catch(() => ''));
    if (res.status === 401) needKey(message);
    throw new ApiError(res.status, message);
  }
  if (apiKey() && keyVerdict !== 'ok') { keyVerdict = 'ok'; renderKeyButton(); }
  return res;
}

export async function apiJson(path, options) {
  return (await apiFetch(path, options)).json();
}

// A readable sentence from an error answer: FastAPI's `detail` is a string, or a list of
// validation errors ({loc, msg}); anything else is shown as JSON, never as [object Object].
export function describeError(status, text) {
  let detail;
  try { detail = JSON.parse(text).detail; } catch { detail = undefined; }
  let message = formatDetail(detail);
  if (!message && text && text.length < 400 && !text.trimStart().startsWith('<')) message = text.trim();
  return message || `The server answered with HTTP ${status}.`;
}

function formatDetail(detail) {
  if (detail === undefined || detail === null) return '';
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) return detail.map(formatDetail).filter(Boolean).join('\n');
  if (typeof detail === 'object') {
    if (typeof detail.msg === 'string') {
      // `field` is the path as the user wrote it ("outputs[0].video.height"); older servers send only loc
      if (typeof detail.field === 'string') return detail.field ? `${detail.field}: ${detail.msg}` : detail.msg;
      const where = Array.isArray(detail.loc)
        ? detail.loc.filter((part) => !['body', 'query', 'path', 'header'].includes(part)).join('.')
        : '';
      return where ? `${where}: ${detail.msg}` : detail.msg;
    }
    if (typeof detail.message === 'string') return detail.message;
    try { return JSON.stringify(detail); } catch { return String(detail); }
  }
  return String(detail);
}

export function errorText(err) {
  if (err instanceof ApiError) return err.message;
  return (err && err.message) || String(err);
}

// --- the API key prompt (the key bar under the top bar) -----------------------------------------

function renderKeyButton() {
  const button = $('api-key-button');
  const key = apiKey();
  // ✓ only once the server accepted the key: a saved key is not a working one.
  button.textContent = !key ? 'API key' : keyVerdict === 'ok' ? 'API key ✓' : keyVerdict === 'refused' ? 'API key refused' : 'API key';
  button.dataset.state = key ? keyVerdict : 'none';
  show($('key-forget'), Boolean(apiKey()));
}

// An answer was 401: ask for a key (instead of showing the error everywhere).
export function needKey(message) {
  const bar = $('keybar');
  const wasHidden = bar.hidden;
  if (apiKey() && keyVerdict !== 'refused') { keyVerdict = 'refused'; renderKeyButton(); }
  $('key-reason').textContent = apiKey()
    ? `The saved key was refused (${message}). Enter another one.`
    : 'Enter the key you were given; it is kept in this browser only.';
  show(bar, true);
  setConn('error', 'API key needed');
  if (wasHidden) $('key-input').focus();
}

// Wires the key bar; onKeyChange({ forgotten }) runs after a key is saved or forgotten (reload what the page shows).
export function initKeyPrompt(onKeyChange) {
  renderKeyButton();
  $('key-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = $('key-input').value.trim();
    if (!key) return;
    setApiKey(key);
    $('key-input').value = '';
    show($('keybar'), false);
    onKeyChange({ forgotten: false });
  });
  $('key-forget').addEventListener('click', () => {
    setApiKey('');
    show($('keybar'), false);
    onKeyChange({ forgotten: true });
  });
  $('key-close').addEventListener('click', () => show($('keybar'), false));
  $('api-key-button').addEventListener('click', () => {
    const bar = $('keybar');
    if (bar.hidden) {
      $('key-reason').textContent = apiKey() ? 'A key is saved in this browser. Enter another one to replace it.'
        : 'Only needed when the server has API_KEYS set.';
    }
    show(bar, bar.hidden);
    if (!bar.hidden) $('key-input').focus();
  });
}
