// Small DOM helpers shared by the dashboard's modules.
// Everything from the API is put into the page with textContent (never innerHTML): job sources and
// errors are user input. `el` and `showAlert` only ever set textContent.

export const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function show(node, visible) { node.hidden = !visible; }

export function showAlert(node, message) {
  node.textContent = message || '';
  show(node, Boolean(message));
}

// The connection indicator in the top bar: data-state is ok, error, paused or unknown.
export function setConn(stateName, text) {
  const conn = document.querySelector('.conn');
  conn.dataset.state = stateName;
  conn.querySelector('.conn-text').textContent = text;
}
