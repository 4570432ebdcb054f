// The page's state: requests and technicians by id, merged from the list
// answers and the live stream (newest wins), plus who is selected.
import { stamp } from './format.js';

const listeners = new Map(); // topic → Set(fn)

export const store = {
  requests: new Map(),
  technicians: new Map(),
  skills: [],
  selected: null, // request id shown in the detail panel
};

/** on('request' | 'technician' | 'skills' | 'select' | 'changed', fn) */
export function on(topic, fn) {
  if (!listeners.has(topic)) listeners.set(topic, new Set());
  listeners.get(topic).add(fn);
  return () => listeners.get(topic).delete(fn);
}

export function emit(topic, ...args) {
  for (const fn of listeners.get(topic) ?? []) {
    try {
      fn(...args);
    } catch (err) {
      console.error(`listener of ${topic} failed`, err);
    }
  }
  if (topic !== 'changed') scheduleChanged();
}

// 'changed' fires once per animation frame after any burst of changes, for
// views that redraw a whole list.
let frame = 0;
function scheduleChanged() {
  if (frame) return;
  const run = () => {
    frame = 0;
    emit('changed');
  };
  frame = typeof requestAnimationFrame === 'function' && !document.hidden ? requestAnimationFrame(run) : setTimeout(run, 50);
}

// Returns [accepted, the item held before].
function merge(map, item) {
  if (!item || !item.id) return [false, undefined];
  const held = map.get(item.id);
  if (held && stamp(item) < stamp(held)) return [false, held];
  map.set(item.id, item);
  return [true, held];
}

/** Keeps r unless a newer version is held; listeners get (r, previous). */
export function putRequest(r) {
  const [ok, prev] = merge(store.requests, r);
  if (ok) emit('request', r, prev);
  return ok;
}

export function putTechnician(t) {
  const [ok, prev] = merge(store.technicians, t);
  if (ok) emit('technician', t, prev);
}

export function skillName(code) {
  return store.skills.find((s) => s.code === code)?.name ?? code;
}

export function setSkills(items) {
  store.skills = [...items].sort((a, b) => a.code.localeCompare(b.code));
  emit('skills', store.skills);
}

export function select(id) {
  if (store.selected === id) return;
  const prev = store.selected;
  store.selected = id;
  emit('select', id, prev);
}

export function techName(id) {
  if (!id) return '';
  const t = store.technicians.get(id);
  return t ? t.name : `Technician …${String(id).slice(-6)}`;
}
