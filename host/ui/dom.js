// Small DOM helpers. Everything the page shows from the API goes through `textContent` (never
// innerHTML), so a task titled `<img onerror=…>` is just text.

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** `h('li', {class: 'x', dataset: {id}}, 'text', child)`: an element with attributes and children. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else if (key.startsWith('on')) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : value);
  }
  el.append(...children.flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

/** An icon from the sprite, hidden from assistive technology (its button has a label). */
export function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  const use = document.createElementNS(SVG, 'use');
  use.setAttribute('href', `/ui/icons.svg#${name}`);
  svg.append(use);
  return svg;
}

/** Says `message` to screen readers (polite): for changes the user did not make here. */
export function announce(message) {
  const region = $('#announcer');
  // Clearing first makes a repeated message be read again.
  region.textContent = '';
  setTimeout(() => { region.textContent = message; }, 30);
}

/** A short message at the bottom of the screen; errors stay longer. */
export function toast(message, { error = false, ms = error ? 7000 : 3500, icon: name = error ? 'alert' : 'check' } = {}) {
  // The container is a polite live region; an error interrupts (role=alert).
  const el = h('div', { class: `toast${error ? ' error' : ''}`, role: error ? 'alert' : null },
    icon(name), h('span', {}, message));
  $('#toasts').append(el);
  setTimeout(() => el.remove(), ms);
}

/** Opens a modal `<dialog>`; its `[data-close]` buttons and Escape close it. */
export function openDialog(dialog) {
  if (!dialog.dataset.wired) {
    dialog.dataset.wired = '1';
    for (const b of $$('[data-close]', dialog)) b.addEventListener('click', () => dialog.close('cancel'));
    // A click on the backdrop (the dialog element itself, outside its content) closes it.
    dialog.addEventListener('click', (e) => { if (e.target === dialog) dialog.close('cancel'); });
  }
  if (!dialog.open) dialog.showModal();
}

/** Asks a yes/no question in the confirm dialog; resolves true for yes. */
export function confirmAction(title, text, okLabel) {
  const dialog = $('#confirm-dialog');
  $('#confirm-title', dialog).textContent = title;
  $('#confirm-text', dialog).textContent = text;
  $('#confirm-ok', dialog).textContent = okLabel;
  dialog.returnValue = '';
  openDialog(dialog);
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
  });
}
