// A video output's measured quality: a table of the pooled scores (mean, min, 5th percentile) and,
// from the output's per-frame CSV, VMAF over time as an inline SVG line. The CSV loads through the
// job's signed URL like every other file; numbers only reach the page as textContent or SVG attributes.
// The CSV is written with CRLF line ends (Python's csv module): lines split on either, cells trimmed.
import { el } from './dom.js';

const SVG = 'http://www.w3.org/2000/svg';
const WIDTH = 320;
const HEIGHT = 80;

function fixed(value) {
  return value === null || value === undefined ? '—' : Number(value).toFixed(2);
}

function table(quality) {
  const node = el('table', 'quality-table');
  node.dataset.testid = 'quality-table';
  const head = el('tr');
  for (const title of ['', 'mean', 'min', 'p5']) head.append(el('th', null, title));
  node.append(head);
  for (const [metric, pooled] of Object.entries(quality)) {
    const row = el('tr');
    row.dataset.metric = metric;
    row.append(el('th', null, metric.toUpperCase()), el('td', null, fixed(pooled.mean)),
      el('td', null, fixed(pooled.min)), el('td', null, fixed(pooled.p5)));
    node.append(row);
  }
  return node;
}

export function vmafSeries(text) {
  const [header, ...rows] = text.trim().split(/\r?\n/).map((line) => line.split(',').map((cell) => cell.trim()));
  const column = header.indexOf('vmaf');
  if (column < 0) return [];
  return rows.map((cells) => Number(cells[column])).filter((v) => Number.isFinite(v));
}

// VMAF is 0-100; the axis starts a little under the worst frame so a dip stays visible.
function plot(values) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
  svg.setAttribute('class', 'vmaf-plot'); // scales down with the panel (style.css), so a phone never scrolls sideways
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', 'VMAF per frame');
  svg.dataset.testid = 'vmaf-plot';
  const low = Math.max(0, Math.min(...values) - 5);
  const step = values.length > 1 ? WIDTH / (values.length - 1) : 0;
  const y = (v) => (HEIGHT - ((v - low) / (100 - low || 1)) * HEIGHT).toFixed(1);
  const line = document.createElementNS(SVG, 'polyline');
  line.setAttribute('points', values.map((v, i) => `${(i * step).toFixed(1)},${y(v)}`).join(' '));
  line.setAttribute('fill', 'none');
  line.setAttribute('stroke', '#3b82f6');
  line.setAttribute('stroke-width', '1.5');
  const frame = document.createElementNS(SVG, 'rect');
  for (const [k, v] of [['width', WIDTH], ['height', HEIGHT], ['fill', 'none'], ['stroke', '#ccc']]) frame.setAttribute(k, String(v));
  svg.append(frame, line);
  return svg;
}

// urlFor(file): where one of the output's files loads from (a signed link).
export function qualityNode(output, urlFor) {
  const wrap = el('div', 'output-quality');
  wrap.dataset.testid = `quality-${output.name}`;
  if (output.crf_search) {
    const s = output.crf_search;
    wrap.append(el('p', 'muted', `target VMAF ${s.target_vmaf}: CRF ${s.crf} (${s.probes.length} probes, ${s.seconds} s), measured ${fixed(s.vmaf)}`));
  }
  wrap.append(table(output.quality));
  const csv = output.files.find((f) => f.path.endsWith('.quality.csv'));
  if (csv && 'vmaf' in output.quality) {
    fetch(urlFor(csv))
      .then((answer) => (answer.ok ? answer.text() : ''))
      .then((text) => {
        const values = vmafSeries(text);
        if (values.length) wrap.append(plot(values));
      })
      .catch(() => { /* the table stays; the plot is a bonus */ });
  }
  return wrap;
}
