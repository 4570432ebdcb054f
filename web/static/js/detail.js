// The request panel: facts, actions (assign, cancel with a reason,
// redispatch), the ranked eligible technicians, the offers with why each went
// where it went, and the audit timeline. It follows the stream: a change to
// the request reloads its timeline and offers; technicians moving reload the
// candidates.
import * as api from './api.js';
import { store, on, putRequest, techName, skillName } from './store.js';
import { h, replace, toast, debounce } from './dom.js';
import {
  stateLabel, riskReason, place, clock, clockSeconds, ago, duration, distance, pct, shortId, humanize,
  can, offerWhy, eventSummary, eventTone, deadlineOf,
} from './format.js';
import { countdownEl, tickCountdowns } from './queues.js';

export function createDetail(panel, { onClose, onFocus }) {
  let id = null;
  let seq = 0; // drops answers for a request no longer shown
  let parts = null;
  let candidates = null;
  let offers = null;
  let events = null;

  function open(requestId) {
    id = requestId;
    seq++;
    candidates = offers = events = null;
    panel.hidden = false;
    panel.dataset.requestId = id;
    build();
    const r = store.requests.get(id);
    if (r) {
      paint(r);
    } else {
      const mine = seq;
      api.get(`v1/requests/${api.enc(id)}`).then((got) => {
        if (mine !== seq) return;
        putRequest(got);
        paint(store.requests.get(id) ?? got);
      }).catch((err) => {
        if (mine !== seq) return;
        replace(parts.body, h('p', { class: 'form-error' }, err.status === 404 ? 'This request does not exist.' : err.message));
      });
    }
    loadAll();
  }

  function close() {
    id = null;
    seq++;
    panel.hidden = true;
    delete panel.dataset.requestId;
    replace(panel);
    parts = null;
  }

  function build() {
    const title = h('h2', { class: 'detail-title', dataset: { testid: 'detail-title' } }, 'Request');
    const badges = h('div', { class: 'row' });
    const sub = h('div', { class: 'muted small mono' }, `Request ${shortId(id)}`);
    const closeBtn = h('button', {
      type: 'button', class: 'btn btn-ghost btn-icon', 'aria-label': 'Close', title: 'Close (Esc)',
      dataset: { testid: 'detail-close' }, onclick: () => onClose(),
    }, '×');
    const facts = h('div');
    const actions = buildActions();
    const cands = h('div', { dataset: { testid: 'candidates' } }, h('p', { class: 'loading' }, 'Loading…'));
    const offs = h('div', { dataset: { testid: 'offers' } }, h('p', { class: 'loading' }, 'Loading…'));
    const tl = h('div', { dataset: { testid: 'timeline' } }, h('p', { class: 'loading' }, 'Loading…'));
    const body = h('div', { class: 'detail-body' },
      h('section', { class: 'section' }, facts),
      h('section', { class: 'section' }, h('h3', { class: 'section-title' }, 'Actions'), actions.el),
      h('section', { class: 'section' }, h('h3', { class: 'section-title' }, 'Eligible technicians, best first'), cands),
      h('section', { class: 'section' }, h('h3', { class: 'section-title' }, 'Offers'), offs),
      h('section', { class: 'section' }, h('h3', { class: 'section-title' }, 'Timeline'), tl),
    );
    replace(panel,
      h('div', { class: 'detail-head' }, h('div', { class: 'grow stack', style: 'gap:4px' }, title, badges, sub), closeBtn),
      body);
    parts = { title, sub, badges, facts, actions, cands, offs, tl, body };
  }

  function buildActions() {
    const redispatch = h('button', {
      type: 'button', class: 'btn', dataset: { testid: 'redispatch' },
      onclick: () => doRedispatch(),
    }, 'Redispatch');
    const reason = h('input', {
      name: 'reason', maxlength: '500', placeholder: 'Reason for cancelling', 'aria-label': 'Reason for cancelling',
      dataset: { testid: 'cancel-reason' },
    });
    const cancel = h('button', { type: 'submit', class: 'btn btn-danger', dataset: { testid: 'cancel-submit' } }, 'Cancel request');
    const form = h('form', { class: 'cancel-row', onsubmit: (e) => { e.preventDefault(); doCancel(reason, cancel); } }, reason, cancel);
    const note = h('p', { class: 'muted small', style: 'margin:0' });
    const focusBtn = h('button', { type: 'button', class: 'btn', dataset: { testid: 'detail-locate' }, onclick: () => {
      const r = store.requests.get(id);
      if (r) onFocus(r.lat, r.lng);
    } }, 'Show on map');
    const el = h('div', { class: 'actions' }, h('div', { class: 'row' }, redispatch, focusBtn), form, note);
    return { el, redispatch, reason, cancel, note };
  }

  function paint(r) {
    if (!parts || r.id !== id) return;
    panel.dataset.state = r.state;
    parts.title.textContent = skillName(r.skill);
    parts.sub.textContent = `${r.skill} · request ${shortId(r.id)}`;
    const risk = riskReason(r);
    replace(parts.badges,
      h('span', { class: `badge st-${r.state}`, dataset: { testid: 'detail-state', state: r.state } }, stateLabel(r.state)),
      risk ? h('span', { class: 'badge risk', dataset: { testid: 'detail-risk' } }, `At risk: ${risk}`) : null,
      r.arrival_flagged ? h('span', { class: 'badge risk', dataset: { testid: 'detail-arrival-flagged' } },
        typeof r.arrival_distance_m === 'number' ? `Arrived ${distance(r.arrival_distance_m)} from the site` : 'Arrived with no known position') : null,
      h('span', { class: 'badge plain' }, r.mode === 'window' ? 'Time window' : 'ASAP'),
    );
    const deadline = deadlineOf(r);
    const open = ['scheduled', 'searching', 'assigned', 'en_route'].includes(r.state);
    const tech = r.technician_id ? store.technicians.get(r.technician_id) : null;
    replace(parts.facts,
      h('dl', { class: 'facts' },
        h('dt', null, 'Place'), h('dd', null, place(r) || '—'),
        r.notes ? [h('dt', null, 'Notes'), h('dd', null, r.notes)] : null,
        h('dt', null, 'Created'), h('dd', null, `${clock(r.created_at)} (${ago(r.created_at)}) by ${r.created_by}`),
        h('dt', null, 'Customer'), h('dd', { class: 'mono' }, r.customer_id),
        r.mode === 'window' ? [h('dt', null, 'Window'), h('dd', null, `${clock(r.window_start)} – ${clock(r.window_end)}`)] : null,
        h('dt', null, 'Technician'), h('dd', { dataset: { testid: 'detail-technician' } },
          r.technician_id ? [techName(r.technician_id), tech ? h('span', { class: 'muted' }, ` · ${tech.phone}`) : null] : '—'),
        r.eta_at ? [h('dt', null, 'ETA'), h('dd', null, `${clock(r.eta_at)} (${ago(r.eta_at)})`)] : null,
        h('dt', null, 'Deadline'), h('dd', null, r.sla_deadline ? clock(r.sla_deadline) : '—'),
        r.visits ? [h('dt', null, 'Visits'), h('dd', null, String(r.visits))] : null,
        r.outcome ? [h('dt', null, 'Outcome'), h('dd', null, humanize(r.outcome))] : null,
        r.follow_up_of ? [h('dt', null, 'Follow-up of'), h('dd', null,
          h('a', { href: `#request/${encodeURIComponent(r.follow_up_of)}`, class: 'mono', dataset: { testid: 'detail-follow-up-of' } }, shortId(r.follow_up_of)))] : null,
        r.cancel_reason ? [h('dt', null, 'Cancelled'), h('dd', null, r.cancel_reason)] : null,
      ),
      open && deadline ? h('div', { class: 'deadline-box' }, countdownEl(deadline, r.state === 'scheduled' ? 'window' : 'sla'),
        h('span', { class: 'muted small' }, r.state === 'scheduled' ? 'until the window starts' : 'to the deadline')) : null,
    );
    const a = parts.actions;
    a.redispatch.disabled = !can(r, 'redispatch');
    a.cancel.disabled = !can(r, 'cancel');
    a.reason.disabled = !can(r, 'cancel');
    a.note.textContent = can(r, 'cancel') ? '' : `A request that is ${stateLabel(r.state).toLowerCase()} can no longer be cancelled.`;
    tickCountdowns(parts.facts);
  }

  // ---- loading ----
  function loadAll() {
    loadEvents();
    loadOffers();
    loadCandidates();
  }

  async function loadEvents() {
    const mine = seq;
    try {
      const res = await api.get(`v1/requests/${api.enc(id)}/events`);
      if (mine !== seq) return;
      events = res.items ?? [];
      paintTimeline();
    } catch (err) {
      if (mine === seq) replace(parts.tl, h('p', { class: 'form-error' }, err.message));
    }
  }

  async function loadOffers() {
    const mine = seq;
    try {
      const res = await api.get(`v1/requests/${api.enc(id)}/offers`);
      if (mine !== seq) return;
      offers = res.items ?? [];
      paintOffers();
    } catch (err) {
      if (mine === seq) replace(parts.offs, h('p', { class: 'form-error' }, err.message));
    }
  }

  async function loadCandidates() {
    const mine = seq;
    const r = store.requests.get(id);
    if (r && !can(r, 'assign')) {
      candidates = [];
      paintCandidates();
      return;
    }
    try {
      const res = await api.get(`v1/requests/${api.enc(id)}/candidates?limit=10`);
      if (mine !== seq) return;
      candidates = res.items ?? [];
      paintCandidates();
    } catch (err) {
      if (mine === seq) replace(parts.cands, h('p', { class: 'form-error' }, err.message));
    }
  }

  function paintCandidates() {
    if (!parts) return;
    const r = store.requests.get(id);
    if (r && !can(r, 'assign')) {
      replace(parts.cands, h('p', { class: 'muted small' }, `Assigning is not possible while the request is ${stateLabel(r.state).toLowerCase()}.`));
      return;
    }
    if (!candidates.length) {
      replace(parts.cands, h('p', { class: 'muted small', dataset: { testid: 'no-candidates' } },
        `Nobody is eligible right now: on duty, certified for ${r ? skillName(r.skill) : 'the skill'}, in range, with capacity, and not already offered this request.`));
      return;
    }
    const reassign = r && ['assigned', 'en_route'].includes(r.state);
    replace(parts.cands, h('table', { class: 'table' },
      h('thead', null, h('tr', null,
        h('th', null, '#'), h('th', null, 'Technician'), h('th', { class: 'num' }, 'ETA'), h('th', { class: 'num' }, 'On time'), h('th'))),
      h('tbody', null, candidates.map((c) => h('tr', { dataset: { testid: `candidate-${c.technician_id}`, technicianId: c.technician_id } },
        h('td', null, h('span', { class: `rank${c.rank === 1 ? ' r1' : ''}` }, String(c.rank))),
        h('td', null, h('div', null, techName(c.technician_id)),
          h('div', { class: 'muted small' }, `${distance(c.distance_m)} · arrives ${clock(c.arrival)}${c.rating ? ` · ★ ${Number(c.rating).toFixed(1)}` : ''}`)),
        h('td', { class: 'num nowrap' }, duration(c.eta_s)),
        h('td', { class: 'num' }, pct(c.on_time_chance)),
        h('td', { class: 'num' }, h('button', {
          type: 'button', class: 'btn btn-primary btn-small', dataset: { testid: `assign-${c.technician_id}`, action: 'assign' },
          onclick: (e) => doAssign(c.technician_id, e.currentTarget),
        }, reassign ? 'Reassign' : 'Assign')),
      )))));
  }

  function paintOffers() {
    if (!parts) return;
    if (!offers.length) {
      replace(parts.offs, h('p', { class: 'muted small' }, 'No offers yet.'));
      return;
    }
    replace(parts.offs, h('ul', { class: 'offers' }, offers.map((o) => h('li', { class: 'offer', dataset: { testid: `offer-${o.id}`, state: o.state } },
      h('div', { class: 'offer-top' },
        h('strong', null, techName(o.technician_id)),
        h('span', { class: `badge of-${o.state}` }, humanize(o.state))),
      h('div', { class: 'offer-why' }, offerWhy(o.why) || `round ${o.round}, rank ${o.rank}, ${duration(o.eta_seconds)} away`),
      h('div', { class: 'muted small' }, `offered ${clockSeconds(o.created_at)}`,
        o.answered_at ? ` · ${o.state} ${clockSeconds(o.answered_at)}` : ` · expires ${clockSeconds(o.expires_at)}`),
    ))));
  }

  function paintTimeline() {
    if (!parts) return;
    if (!events.length) {
      replace(parts.tl, h('p', { class: 'muted small' }, 'No events.'));
      return;
    }
    replace(parts.tl, h('ol', { class: 'timeline' }, events.map((e) => {
      const summary = eventSummary(e, techName);
      const who = e.actor_role === 'system' ? 'Onsite' : `${e.actor_role} ${e.actor_role === 'technician' ? techName(e.actor_id) : e.actor_id}`;
      return h('li', { class: eventTone(e.type), dataset: { testid: 'timeline-event', type: e.type } },
        h('div', { class: 'tl-head' }, h('span', { class: 'tl-type' }, humanize(e.type)), h('span', { class: 'tl-time' }, clockSeconds(e.at))),
        h('div', { class: 'tl-data' }, summary ? `${summary} — ${who}` : who));
    })));
  }

  // ---- actions ----
  async function doAssign(techId, btn) {
    const buttons = parts.cands.querySelectorAll('button[data-action="assign"]');
    for (const b of buttons) b.disabled = true;
    btn.textContent = 'Assigning…';
    try {
      const r = await api.post(`v1/requests/${api.enc(id)}/assign`, { technician_id: techId });
      putRequest(r);
      toast(`Assigned to ${techName(techId)}.`, 'ok');
    } catch (err) {
      toast(`Could not assign: ${err.message}`, 'error');
      loadCandidates();
    }
  }

  async function doRedispatch() {
    const r = store.requests.get(id);
    if (r && ['assigned', 'en_route'].includes(r.state) &&
      !window.confirm(`Take this request from ${techName(r.technician_id)} and search again?`)) return;
    parts.actions.redispatch.disabled = true;
    try {
      putRequest(await api.post(`v1/requests/${api.enc(id)}/redispatch`));
      toast('Searching again.', 'ok');
    } catch (err) {
      toast(`Could not redispatch: ${err.message}`, 'error');
    } finally {
      const cur = store.requests.get(id);
      if (parts && cur) parts.actions.redispatch.disabled = !can(cur, 'redispatch');
    }
  }

  async function doCancel(input, btn) {
    const reason = input.value.trim();
    if (!reason) {
      input.setAttribute('aria-invalid', 'true');
      input.focus();
      toast('Say why the request is cancelled.', 'error');
      return;
    }
    input.removeAttribute('aria-invalid');
    btn.disabled = true;
    try {
      putRequest(await api.post(`v1/requests/${api.enc(id)}/cancel`, { reason }));
      input.value = '';
      toast('Request cancelled.', 'ok');
    } catch (err) {
      toast(`Could not cancel: ${err.message}`, 'error');
      btn.disabled = false;
    }
  }

  // ---- live ----
  const reloadHistory = debounce(() => {
    if (!id) return;
    loadEvents();
    loadOffers();
    loadCandidates();
  }, 250, 1000);
  const reloadCandidates = debounce(() => {
    if (id) loadCandidates();
  }, 1000, 3000);

  on('request', (r) => {
    if (r.id !== id) return;
    paint(store.requests.get(id));
    reloadHistory();
  });
  on('technician', (t) => {
    if (!id || !parts) return;
    const r = store.requests.get(id);
    if (r && can(r, 'assign')) reloadCandidates();
    if (r && r.technician_id === t.id) paint(r);
  });

  return { open, close, get id() { return id; } };
}
