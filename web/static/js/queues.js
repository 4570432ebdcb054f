// The queues tab: at risk, unassigned (searching and scheduled), unfulfilled,
// and in progress. Rebuilt from the store on every change; items whose
// content did not change keep their element.
import { store, techName, skillName } from './store.js';
import { h, replace, reconcile } from './dom.js';
import { UNASSIGNED_STATES, IN_PROGRESS_STATES, stateLabel, riskReason, place, ago, clock, countdown, deadlineOf, ms } from './format.js';

const SECTIONS = [
  {
    id: 'at-risk',
    title: 'At risk',
    empty: 'Nothing at risk.',
    filter: (r, now) => riskReason(r, now) !== '',
    sort: byDeadline,
  },
  {
    id: 'unassigned',
    title: 'Unassigned',
    empty: 'Every request has a technician.',
    filter: (r) => UNASSIGNED_STATES.includes(r.state),
    sort: byDeadline,
  },
  {
    id: 'unfulfilled',
    title: 'Unfulfilled',
    empty: 'No unfulfilled requests.',
    filter: (r) => r.state === 'unfulfilled',
    sort: (a, b) => (ms(b.unfulfilled_at) ?? 0) - (ms(a.unfulfilled_at) ?? 0),
  },
  {
    id: 'in-progress',
    title: 'In progress',
    empty: 'No jobs in progress.',
    filter: (r) => IN_PROGRESS_STATES.includes(r.state),
    sort: byDeadline,
  },
];

function byDeadline(a, b) {
  return (ms(deadlineOf(a)) ?? Infinity) - (ms(deadlineOf(b)) ?? Infinity) || a.id.localeCompare(b.id);
}

export function createQueues(panel, { onSelect }) {
  const lists = new Map();
  replace(panel, SECTIONS.map((s) => {
    const list = h('ul', { class: 'queue-list', dataset: { testid: `queue-${s.id}-list` } });
    const count = h('span', { class: 'queue-count', dataset: { testid: `queue-${s.id}-count` } }, '0');
    const empty = h('p', { class: 'queue-empty' }, s.empty);
    lists.set(s.id, { list, count, empty });
    return h('section', { class: `queue q-${s.id}`, dataset: { testid: `queue-${s.id}` }, 'aria-label': s.title },
      h('div', { class: 'queue-head' }, h('h3', { class: 'queue-title' }, s.title), count),
      list, empty);
  }));

  function render() {
    const now = Date.now();
    const all = [...store.requests.values()];
    for (const s of SECTIONS) {
      const items = all.filter((r) => s.filter(r, now)).sort(s.sort);
      const { list, count, empty } = lists.get(s.id);
      count.textContent = String(items.length);
      count.dataset.n = String(items.length);
      empty.hidden = items.length > 0;
      reconcile(list, items, (r) => r.id, (r) => version(r, now), (r) => h('li', null, item(r, now, onSelect)));
    }
    tickCountdowns(panel);
  }

  return { render };
}

function version(r, now) {
  return [r.state, r.updated_at, r.at_risk, r.technician_id, r.eta_at, riskReason(r, now), techName(r.technician_id),
    store.selected === r.id, r.address, skillName(r.skill), Math.floor(now / 60_000)].join('|');
}

function item(r, now, onSelect) {
  const risk = riskReason(r, now);
  return h('button', {
    type: 'button',
    class: `qitem st-${r.state}${risk ? ' risky' : ''}`,
    'aria-current': store.selected === r.id ? 'true' : 'false',
    dataset: { testid: `queue-item-${r.id}`, requestId: r.id, state: r.state },
    onclick: () => onSelect(r.id),
  },
  h('div', { class: 'qitem-top' },
    h('span', { class: 'qitem-title', title: r.skill }, skillName(r.skill)),
    clockOf(r, now)),
  h('div', { class: 'qitem-sub' }, place(r) || '—'),
  h('div', { class: 'qitem-meta' },
    h('span', { class: `badge st-${r.state}`, dataset: { testid: 'state' } }, stateLabel(r.state)),
    risk ? h('span', { class: 'badge risk', title: `At risk: ${risk}` }, risk) : null,
    r.technician_id ? h('span', { class: 'muted' }, techName(r.technician_id)) : null,
    r.eta_at && ['assigned', 'en_route'].includes(r.state) ? h('span', { class: 'muted' }, `ETA ${clock(r.eta_at)}`) : null,
    r.state === 'scheduled' && r.window_start
      ? h('span', { class: 'muted' }, `window ${clock(r.window_start)}–${clock(r.window_end)}`)
      : r.technician_id ? null : h('span', { class: 'muted' }, ago(r.created_at, now)),
  ));
}

/** The top-right of an item: what the dispatcher watches in that state. */
function clockOf(r, now) {
  switch (r.state) {
    case 'scheduled':
      return r.window_start ? countdownEl(r.window_start, 'window') : null;
    case 'searching':
    case 'assigned':
    case 'en_route':
      return r.sla_deadline ? countdownEl(r.sla_deadline, 'sla') : null;
    case 'on_site':
      return h('span', { class: 'muted small nowrap' }, `on site ${ago(r.on_site_at, now).replace(/ ago$/, '')}`);
    case 'unfulfilled':
      return h('span', { class: 'muted small nowrap' }, `gave up ${ago(r.unfulfilled_at, now)}`);
    default:
      return null;
  }
}

/** A countdown to a deadline, kept current by tickCountdowns. */
export function countdownEl(deadline, mode = 'sla') {
  const el = h('span', { class: 'countdown', dataset: { deadline, mode, testid: 'countdown' } });
  paint(el, Date.now());
  return el;
}

function paint(el, now) {
  const left = (ms(el.dataset.deadline) ?? now) - now;
  const text = countdown(left);
  if (el.dataset.mode === 'window') {
    el.textContent = left >= 0 ? `starts in ${text}` : `started ${text.slice(1)} ago`;
    el.className = 'countdown';
    return;
  }
  el.textContent = left >= 0 ? `${text} left` : `${text.slice(1)} over`;
  el.className = `countdown${left < 0 ? ' overdue' : left < 15 * 60_000 ? ' soon' : ''}`;
  el.title = `Deadline ${clock(el.dataset.deadline)}`;
}

/** Updates every countdown under root (called every second). */
export function tickCountdowns(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll('.countdown[data-deadline]')) paint(el, now);
}
