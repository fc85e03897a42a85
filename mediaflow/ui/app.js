// MediaFlow dashboard: plain JavaScript modules, no build step, no dependencies.
// Everything from the API is put into the page with textContent (never innerHTML): job sources and
// errors are user input.
//
// Modules (imports only go down this list, so there are no cycles):
//   app.js     this entry point: wires the modules together and starts the page
//   submit.js  the "New job" form: source (upload, path, s3://), then a method, a template or custom
//              outputs (outputs_form.js); POST /process or POST /jobs
//   detail.js  the selected job: detail panel, download, cancel/retry/delete
//   panel_media.js  the panel's own player (a job of one video or sound file) and the ffmpeg log
//   record.js  the selected job's full record (GET /jobs/{id}) and its signed file links
//   outputs.js its outputs, each with status, progress, notes, quality (quality.js), files and
//              what fits them (players.js); tasks.js its tasks per worker
//   jobs.js    the job list: filter, paging, polling, the connection indicator
//   events.js  following one job: SSE over fetch, reconnects, polling fallback
//   api.js     fetch with the API key, the key prompt, readable errors
//   format.js  durations, sizes, times, status/phase/method labels, badges, field values
//   dom.js     $, el, show, showAlert, the connection indicator
// A job row's click reaches detail.js through initJobs({ select }), not an import.
import { initKeyPrompt } from './api.js';
import { clearSelection, initDetail, selectJob, selectedJobId } from './detail.js';
import { initJobs, refreshList, startPolling } from './jobs.js';
import { initSubmit, loadMethods } from './submit.js';

function reloadEverything({ forgotten }) {
  loadMethods();
  refreshList();
  const jobId = selectedJobId();
  // Jobs belong to a key: without it the shown job is not ours to show any more.
  if (jobId && forgotten) clearSelection();
  else if (jobId) selectJob(jobId, { force: true });
}

function selectFromHash() {
  const fromHash = /^#job=(.+)$/.exec(location.hash);
  if (!fromHash) return;
  try { selectJob(decodeURIComponent(fromHash[1])); } catch { /* a malformed hash: ignore */ }
}

initKeyPrompt(reloadEverything);
initSubmit();
initJobs({ select: selectJob });
initDetail();

loadMethods();
startPolling();
selectFromHash();
window.addEventListener('hashchange', selectFromHash); // a pasted or edited #job= link switches jobs
