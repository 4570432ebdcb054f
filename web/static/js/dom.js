// Small DOM helpers. Everything user-provided goes in as text, never as HTML.
import { safeUrl } from './format.js';

/**
 * h('button', {class: 'btn', onclick: fn, dataset: {testid: 'x'}}, 'Label', child…)
 * Attributes: class, dataset, style (a string or an object, set through the
 * CSSOM, so the CSP needs no inline styles), on* handlers (functions only),
 * boolean properties (disabled, hidden, checked, selected, open), value;
 * anything else via setAttribute. URL attributes (href, src, action…) take
 * only http(s), mailto, tel or relative URLs.
 * Children: strings, numbers, nodes, arrays, or null/false (skipped); strings
 * always become text nodes, never markup.
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      const name = k.toLowerCase();
      if (k === 'class') el.className = v;
      else if (k === 'dataset') {
        for (const [dk, dv] of Object.entries(v)) {
          if (dv !== null && dv !== undefined && dv !== false) el.dataset[dk] = String(dv);
        }
      } else if (k === 'style') {
        if (typeof v === 'string') el.style.cssText = v;
        else Object.assign(el.style, v);
      } else if (name.startsWith('on')) {
        // An inline handler from a string would be script built from data.
        if (typeof v !== 'function') throw new TypeError(`h(): ${k} must be a function`);
        el.addEventListener(name.slice(2), v);
      } else if (k === 'value') el.value = v;
      else if (k === 'disabled' || k === 'hidden' || k === 'checked' || k === 'selected' || k === 'open') el[k] = Boolean(v);
      else if (name === 'srcdoc') throw new TypeError('h(): no srcdoc (markup)');
      else if (URL_ATTRS.has(name)) el.setAttribute(k, safeUrl(v));
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

const URL_ATTRS = new Set(['href', 'src', 'action', 'formaction', 'xlink:href', 'poster', 'data', 'ping', 'background']);

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces el's children. */
export function replace(el, ...children) {
  el.textContent = '';
  append(el, children);
}

/**
 * Keyed list rendering: reuses the element of an item whose version string
 * has not changed, so focus, hover and scroll survive live updates.
 */
export function reconcile(container, items, key, version, render) {
  const old = new Map();
  for (const el of container.children) {
    if (el.dataset.key) old.set(el.dataset.key, el);
  }
  let prev = null;
  for (const item of items) {
    const k = key(item);
    const v = version(item);
    let el = old.get(k);
    if (el && el.dataset.version === v) {
      old.delete(k);
    } else {
      const fresh = render(item);
      fresh.dataset.key = k;
      fresh.dataset.version = v;
      if (el) {
        el.replaceWith(fresh);
        old.delete(k);
      }
      el = fresh;
    }
    const want = prev ? prev.nextSibling : container.firstChild;
    if (want !== el) container.insertBefore(el, want);
    prev = el;
  }
  for (const el of old.values()) el.remove();
  // Anything without a key (an "empty" note) after the items goes too.
  for (const el of [...container.children]) {
    if (!el.dataset.key) el.remove();
  }
}

let toastBox = null;

/** Shows a short message; kind is '', 'ok' or 'error'. */
export function toast(message, kind = '') {
  toastBox ??= document.getElementById('toasts');
  const el = h('div', { class: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status', dataset: { testid: 'toast' } }, message);
  toastBox.append(el);
  setTimeout(() => el.remove(), kind === 'error' ? 7000 : 4000);
}

/** Marks a form field as invalid with the server's message. */
export function fieldError(form, field, message) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.field-error')) el.remove();
  if (!field) return false;
  const input = form.querySelector(`[name="${CSS.escape(field)}"]`);
  if (!input) return false;
  input.setAttribute('aria-invalid', 'true');
  input.closest('label')?.append(h('span', { class: 'field-error' }, message));
  input.focus();
  return true;
}

/** Calls fn at most once per wait ms, at the end of a burst (and at least every maxWait ms during one). */
export function debounce(fn, wait, maxWait = wait * 4) {
  let timer = null;
  let first = 0;
  return (...args) => {
    const now = Date.now();
    if (!timer) first = now;
    clearTimeout(timer);
    const delay = Math.max(0, Math.min(wait, first + maxWait - now));
    timer = setTimeout(() => {
      timer = null;
      fn(...args);
    }, delay);
  };
}
