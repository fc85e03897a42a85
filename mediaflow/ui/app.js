// MediaFlow dashboard: plain JavaScript modules, no build step, no dependencies.
// Everything from the API is put into the page with textContent (never innerHTML): job sources and
// errors are user input.
//
// Modules (imports only go down this list, so there are no cycles):
//   app.js     this entry point: wires the modules together and starts the page
//   submit.js  the "New job" form: methods/formats, upload with progress, POST /process
//   outputs.js the "Many outputs" card: POST /jobs from a template or JSON, each output with its files
//   detail.js  the selected job: detail panel, player, ffmpeg log, download, cancel/retry
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
import { initOutputs } from './outputs.js';

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
initOutputs();

loadMethods();
startPolling();
selectFromHash();
window.addEventListener('hashchange', selectFromHash); // a pasted or edited #job= link switches jobs
