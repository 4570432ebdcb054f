// Formatting and the small domain rules the page applies. Pure functions (no
// DOM), so node's test runner can check them.

export const ACTIVE_STATES = ['scheduled', 'searching', 'assigned', 'en_route', 'on_site', 'unfulfilled'];
export const UNASSIGNED_STATES = ['searching', 'scheduled'];
export const IN_PROGRESS_STATES = ['assigned', 'en_route', 'on_site'];
const BEFORE_SITE = ['searching', 'assigned', 'en_route'];

const STATE_LABELS = {
  scheduled: 'Scheduled',
  searching: 'Searching',
  assigned: 'Assigned',
  en_route: 'En route',
  on_site: 'On site',
  completed: 'Completed',
  cancelled: 'Cancelled',
  unfulfilled: 'Unfulfilled',
};

export function stateLabel(s) {
  return STATE_LABELS[s] ?? humanize(s);
}

/** "offer_sms_failed" → "Offer sms failed". */
export function humanize(s) {
  const t = String(s ?? '').replace(/_/g, ' ').trim();
  return t ? t[0].toUpperCase() + t.slice(1) : '';
}

export function isActive(r) {
  return ACTIVE_STATES.includes(r.state);
}

/** Which actions ops may take on a request in its state (the server has the last word). */
export function can(r, action) {
  switch (action) {
    case 'assign':
      return ['scheduled', 'searching', 'unfulfilled', 'assigned', 'en_route'].includes(r.state);
    case 'redispatch':
      return ['searching', 'assigned', 'en_route', 'unfulfilled'].includes(r.state);
    case 'cancel':
      return ['scheduled', 'searching', 'assigned', 'en_route', 'unfulfilled'].includes(r.state);
    default:
      return false;
  }
}

/**
 * Why a request is at risk of missing its deadline, or '' when it is not:
 * the deadline has passed with nobody on site ('overdue'), the matcher
 * flagged it ('no one in time': even the best candidate arrives too late),
 * or the assigned technician's predicted arrival is after the deadline
 * ('late ETA').
 */
export function riskReason(r, now = Date.now()) {
  if (!BEFORE_SITE.includes(r.state)) return '';
  const deadline = ms(r.sla_deadline);
  if (deadline !== null && deadline <= now) return 'overdue';
  if (r.at_risk) {
    const why = r.state === 'searching' ? 'no one in time' : 'flagged';
    // escalation 3 (paged) and on: the matcher asks the dispatchers to act
    return r.escalation >= 3 ? `paged: ${why}` : why;
  }
  const eta = ms(r.eta_at);
  if (deadline !== null && eta !== null && eta > deadline) return 'late ETA';
  return '';
}

export function isAtRisk(r, now = Date.now()) {
  return riskReason(r, now) !== '';
}

/** Milliseconds since the epoch, or null. */
export function ms(iso) {
  if (!iso) return null;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? null : t;
}

/**
 * A version stamp for merging: the later of updated_at and position_at.
 * An item replaces the one held only when its stamp is not older, so a list
 * answer that raced with the live stream never moves the page backwards.
 */
export function stamp(x) {
  return Math.max(ms(x?.updated_at) ?? 0, ms(x?.position_at) ?? 0);
}

/** "12:05" left, or "−3:10" past; hours as "1:02:05". */
export function countdown(msLeft) {
  const neg = msLeft < 0;
  let s = Math.floor(Math.abs(msLeft) / 1000);
  const hh = Math.floor(s / 3600);
  s -= hh * 3600;
  const mm = Math.floor(s / 60);
  const ss = s - mm * 60;
  const body = hh > 0 ? `${hh}:${pad(mm)}:${pad(ss)}` : `${mm}:${pad(ss)}`;
  return (neg ? '−' : '') + body;
}

function pad(n) {
  return String(n).padStart(2, '0');
}

/** 45 → "45 s", 300 → "5 min", 3900 → "1 h 5 min". */
export function duration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return '–';
  const s = Math.round(Math.abs(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min`;
  const hh = Math.floor(m / 60);
  const mm = m % 60;
  return mm ? `${hh} h ${mm} min` : `${hh} h`;
}

/** 850 → "850 m", 12345 → "12.3 km". */
export function distance(m) {
  if (m === null || m === undefined || Number.isNaN(m)) return '–';
  if (m < 1000) return `${Math.round(m)} m`;
  return `${(m / 1000).toFixed(m < 10000 ? 1 : 0)} km`;
}

/** 0.923 → "92%". */
export function pct(x) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return `${Math.round(x * 100)}%`;
}

/** "14:05" (today) or "3 Mar 14:05". */
export function clock(iso, now = Date.now()) {
  const t = ms(iso);
  if (t === null) return '–';
  const d = new Date(t);
  const hm = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  if (new Date(now).toDateString() === d.toDateString()) return hm;
  return `${d.toLocaleDateString([], { day: 'numeric', month: 'short' })} ${hm}`;
}

export function clockSeconds(iso) {
  const t = ms(iso);
  if (t === null) return '–';
  return new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** "just now", "5 min ago", "2 h ago", "3 d ago"; "in 5 min" for the future. */
export function ago(iso, now = Date.now()) {
  const t = ms(iso);
  if (t === null) return '–';
  const s = Math.round((now - t) / 1000);
  if (Math.abs(s) < 45) return 'just now';
  const future = s < 0;
  const a = Math.abs(s);
  let v;
  if (a < 3600) v = `${Math.round(a / 60)} min`;
  else if (a < 86400) v = `${Math.round(a / 3600)} h`;
  else v = `${Math.round(a / 86400)} d`;
  return future ? `in ${v}` : `${v} ago`;
}

/** The random tail of a UUIDv7 (its head is the time, alike for ids made together). */
export function shortId(id) {
  const s = String(id ?? '');
  return s.length > 8 ? `…${s.slice(-6)}` : s;
}

/** A request's one-line place: the address, or its coordinates. */
export function place(r) {
  if (r.address && r.address.trim()) return r.address.trim();
  if (typeof r.lat === 'number' && typeof r.lng === 'number') return `${r.lat.toFixed(4)}, ${r.lng.toFixed(4)}`;
  return '';
}

/** The deadline a queue counts down to: the SLA deadline, or a window's start while scheduled. */
export function deadlineOf(r) {
  if (r.state === 'scheduled' && r.window_start) return r.window_start;
  return r.sla_deadline ?? r.window_end ?? null;
}

/** Demand against supply in one H3 cell → a fill colour and opacity. */
export function heatStyle(open, available) {
  if (open > available) {
    const short = open - available;
    return { kind: 'short', color: '#dc2626', opacity: Math.min(0.2 + 0.1 * short, 0.55) };
  }
  if (open > 0) return { kind: 'balanced', color: '#f59e0b', opacity: 0.28 };
  return { kind: 'spare', color: '#16a34a', opacity: Math.min(0.12 + 0.05 * available, 0.35) };
}

/**
 * The trend of a KPI today against yesterday's same period: text and whether
 * it is good news. kind: 'share' (0..1, shown in points), 'seconds', 'count'.
 */
export function trend(today, yesterday, kind, higherIsBetter) {
  if (today === null || today === undefined || yesterday === null || yesterday === undefined) {
    return { text: 'no data yesterday', tone: '' };
  }
  const d = today - yesterday;
  let mag;
  if (kind === 'share') mag = Math.round(Math.abs(d) * 100) === 0 ? 0 : `${Math.round(Math.abs(d) * 100)} pts`;
  else if (kind === 'seconds') mag = Math.abs(d) < 30 ? 0 : duration(Math.abs(d));
  else mag = d === 0 ? 0 : String(Math.abs(d));
  if (mag === 0) return { text: '= yesterday', tone: '' };
  const up = d > 0;
  return { text: `${up ? '▲' : '▼'} ${mag} vs yesterday`, tone: up === higherIsBetter ? 'good' : 'bad' };
}

/** [from, to) of today so far and of yesterday's same period, in local time. */
export function kpiPeriods(now = Date.now()) {
  const midnight = new Date(now);
  midnight.setHours(0, 0, 0, 0);
  const yMidnight = new Date(midnight);
  yMidnight.setDate(yMidnight.getDate() - 1);
  const elapsed = now - midnight.getTime();
  const iso = (t) => new Date(t).toISOString();
  // An empty period is rejected by the API (to must be after from).
  const span = Math.max(elapsed, 60_000);
  return {
    today: { from: iso(midnight.getTime()), to: iso(midnight.getTime() + span) },
    yesterday: { from: iso(yMidnight.getTime()), to: iso(yMidnight.getTime() + span) },
  };
}

/** One line about why an offer went where it went. */
export function offerWhy(w) {
  if (!w) return '';
  const parts = [];
  const strategy = { batch: 'batch assignment', sequential: 'sequential offer', wave: 'wave offer' }[w.strategy] ?? w.strategy;
  parts.push(`${strategy}, round ${w.round}, rank ${w.rank}`);
  parts.push(`${duration(w.eta_s)} away (${distance(w.distance_m)})`);
  parts.push(`${pct(w.on_time_chance)} chance on time`);
  if (typeof w.accept_rate === 'number') parts.push(`accepts ${pct(w.accept_rate)} of offers`);
  if (w.rating) parts.push(`rated ${Number(w.rating).toFixed(1)}`);
  if (w.idle_s) parts.push(`idle ${duration(w.idle_s)}`);
  if (w.timeout_s) parts.push(`${duration(w.timeout_s)} to answer`);
  if (w.preferred) parts.push('came for the first visit');
  return parts.join(' · ');
}

/** A short summary of an event's data for the timeline. */
export function eventSummary(e, techName = (id) => shortId(id)) {
  const d = e.data ?? {};
  const bits = [];
  if (d.from && d.to) bits.push(`${stateLabel(d.from)} → ${stateLabel(d.to)}`);
  if (d.technician_id) bits.push(techName(d.technician_id));
  if (d.reason) bits.push(`“${d.reason}”`);
  if (d.why && typeof d.why === 'string') bits.push(d.why);
  if (d.by_hand) bits.push('by hand');
  if (d.outcome) bits.push(humanize(d.outcome));
  if (e.type === 'escalated' && d.step) bits.push(humanize(d.step));
  if (e.type === 'created') {
    if (d.skill) bits.push(d.skill);
    if (d.mode) bits.push(d.mode === 'asap' ? 'ASAP' : 'time window');
  }
  if (d.arrival_flagged) bits.push(`arrival flagged: ${d.arrival_why || 'far from the site'}`);
  if (d.follow_up_id) bits.push(`follow-up ${shortId(d.follow_up_id)}`);
  if (d.follow_up_of) bits.push(`follow-up of ${shortId(d.follow_up_of)}`);
    if (d.rank) bits.push(`rank ${d.rank}`);
  if (typeof d.eta_s === 'number') bits.push(`ETA ${duration(d.eta_s)}`);
  return bits.join(' · ');
}

export function eventTone(type) {
  if (['at_risk', 'escalated', 'running_late', 'unfulfilled', 'cancelled', 'offer_sms_failed', 'dropped', 'offer_declined', 'offer_expired'].includes(type)) return 'ev-bad';
  if (['on_site', 'completed', 'back_on_track', 'offer_accepted'].includes(type)) return 'ev-good';
  if (STATE_LABELS[type]) return 'ev-state';
  return '';
}

// ---- untrusted text ----

const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

/**
 * Text → HTML that shows it literally, in element content and in quoted
 * attribute values. The page builds its DOM with textContent and
 * createElement; this is only for the rare library option that takes an HTML
 * string and nothing else (Leaflet's tile attribution).
 */
export function escapeHtml(s) {
  return String(s ?? '').replace(/[&<>"'`]/g, (c) => HTML_ESCAPES[c]);
}

/**
 * The URL if it is http(s), mailto, tel or relative; otherwise 'about:blank'
 * (javascript:, data:, vbscript:… never reach an href or a src).
 */
export function safeUrl(u) {
  const s = String(u ?? '').trim();
  // Browsers drop tabs and newlines anywhere in a URL ("java\tscript:").
  const scheme = s.replace(/[\u0000-\u0020]/g, '').match(/^([a-z][a-z0-9+.-]*):/i);
  if (!scheme) return s;
  return ['http', 'https', 'mailto', 'tel'].includes(scheme[1].toLowerCase()) ? s : 'about:blank';
}

/**
 * Whether id may go into an API path as one segment: not empty, not "." or
 * ".." (a URL resolves those even percent-encoded, so "#request/.." would
 * send the dispatcher's token to another endpoint), and of a sane length.
 */
export function isSafeId(id) {
  const s = String(id ?? '');
  return s.length > 0 && s.length <= 200 && !/^(\.|%2e){1,2}$/i.test(s) && !/[\u0000-\u001f]/.test(s);
}
