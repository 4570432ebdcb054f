// KPI tiles for today, each with its trend against yesterday's same period
// (midnight to the same time of day). The figures come from GET v1/kpis and
// are fetched again after request changes (debounced); open requests and
// available technicians are counted live from the store.
import * as api from './api.js';
import { store, skillName } from './store.js';
import { h, replace, debounce } from './dom.js';
import { pct, duration, trend, kpiPeriods, isActive, isAtRisk, UNASSIGNED_STATES } from './format.js';

// A share or a percentile is null when there is nothing to count (no data
// is not 0 %); such a tile shows a dash.
const known = (key) => (k) => k[key] !== null && k[key] !== undefined;
const TILES = [
  {
    key: 'on_site_within_sla_share', label: 'On site ≤ SLA',
    title: 'ASAP requests whose deadline has passed (cancelled before it: apart) reached on site in time, within the arrival radius',
    fmt: pct, kind: 'share', higher: true, has: known('on_site_within_sla_share'),
  },
  {
    key: 'time_to_site_p50_s', label: 'Time to site', title: 'Median time from request (or confirmation) to technician on site (ASAP)',
    fmt: duration, kind: 'seconds', higher: false, has: known('time_to_site_p50_s'),
  },
  {
    key: 'acceptance_rate', label: 'Acceptance', title: 'Offers accepted / offers answered or expired',
    fmt: pct, kind: 'share', higher: true, has: known('acceptance_rate'),
  },
  {
    key: 'first_time_fix_rate', label: 'First-time fix', title: 'First visits fixed with no visit for the same need within 7 days (FCR)',
    fmt: pct, kind: 'share', higher: true, has: known('first_time_fix_rate'),
  },
];

export function createKpis(el) {
  const tiles = new Map();
  const tile = (key, label, title) => {
    const value = h('div', { class: 'kpi-value', dataset: { testid: `kpi-${key}-value` } }, '–');
    const sub = h('div', { class: 'kpi-trend' }, '\u00a0');
    const box = h('div', { class: 'kpi', title: title || label, dataset: { testid: `kpi-${key}` } }, h('div', { class: 'kpi-label' }, label), value, sub);
    tiles.set(key, { value, sub });
    return box;
  };
  replace(el,
    TILES.map((t) => tile(t.key, t.label, `${t.title}, today so far`)),
    tile('open', 'Open requests', 'Requests not yet completed, cancelled or unfulfilled (live)'),
    tile('available', 'Available', 'Technicians on duty without a job (live)'));

  let today = null;
  let yesterday = null;

  async function load() {
    const p = kpiPeriods();
    try {
      const [a, b] = await Promise.all([
        api.get(api.withQuery('v1/kpis', p.today)),
        api.get(api.withQuery('v1/kpis', p.yesterday)),
      ]);
      today = a;
      yesterday = b;
      paintFigures();
    } catch (err) {
      if (err.status !== 401) {
        for (const t of TILES) tiles.get(t.key).sub.textContent = 'unavailable';
      }
    }
  }

  function paintFigures() {
    for (const t of TILES) {
      const { value, sub } = tiles.get(t.key);
      const v = today && t.has(today) ? today[t.key] : null;
      const y = yesterday && t.has(yesterday) ? yesterday[t.key] : null;
      value.textContent = v === null ? '–' : t.fmt(v);
      const tr = v === null ? { text: 'no data yet today', tone: '' } : trend(v, y, t.kind, t.higher);
      sub.textContent = tr.text;
      sub.className = `kpi-trend ${tr.tone}`;
    }
    paintLive();
  }

  /** Open requests and available technicians, from the store (live). */
  function paintLive() {
    const now = Date.now();
    let open = 0;
    let unassigned = 0;
    let risky = 0;
    for (const r of store.requests.values()) {
      if (!isActive(r) || r.state === 'unfulfilled') continue;
      open++;
      if (UNASSIGNED_STATES.includes(r.state)) unassigned++;
      if (isAtRisk(r, now)) risky++;
    }
    const o = tiles.get('open');
    o.value.textContent = String(open);
    o.sub.textContent = `${unassigned} unassigned · ${risky} at risk`;
    o.sub.className = `kpi-trend ${risky ? 'bad' : ''}`;

    let avail = 0;
    let onDuty = 0;
    for (const t of store.technicians.values()) {
      if (t.duty_status === 'available') avail++;
      if (t.duty_status !== 'offline') onDuty++;
    }
    const a = tiles.get('available');
    a.value.textContent = String(avail);
    a.sub.textContent = today ? `${onDuty} on duty · ${today.requests} request${today.requests === 1 ? '' : 's'} today` : `${onDuty} on duty`;
  }

  // A burst of changes fetches the figures once; and at midnight "today" starts over.
  const reload = debounce(load, 3000, 15000);
  function scheduleMidnight() {
    const next = new Date();
    next.setHours(24, 0, 5, 0);
    setTimeout(() => {
      load();
      scheduleMidnight();
    }, next.getTime() - Date.now());
  }
  scheduleMidnight();

  return { load, reload, paintLive };
}

// The columns of the breakdown tables: today's figures per group, short
// enough for the sidebar; the title of each cell says more.
const COLUMNS = [
  { label: 'Req', title: 'Requests created today', value: (k) => String(k.requests) },
  {
    label: 'SLA', title: 'On site within the SLA: on time / judged ASAP requests (deadline passed)',
    value: (k) => pct(k.on_site_within_sla_share), more: (k) => `${k.asap_on_time} of ${k.asap_judged} judged, ${k.asap_pending} pending, ${k.cancelled_in_time} cancelled in time`,
  },
  { label: 'Site', title: 'Median time to site (ASAP)', value: (k) => duration(k.time_to_site_p50_s) },
  { label: 'FCR', title: 'First-time fix rate', value: (k) => pct(k.first_time_fix_rate), more: (k) => `${k.first_time_fixes} of ${k.first_visits} first visits, ${k.follow_ups} follow-ups` },
  { label: 'Acc', title: 'Acceptance rate of offers', value: (k) => pct(k.acceptance_rate), more: (k) => `${k.offers} offers` },
  { label: 'Risk', title: 'Requests at risk at least once', value: (k) => String(k.at_risk_requests), more: (k) => `${duration(k.time_at_risk_s)} at risk in all` },
  { label: 'Flag', title: 'Arrivals farther than the arrival radius from the site', value: (k) => String(k.flagged_arrivals) },
];

/**
 * Today's KPIs by area (the configured service areas, or H3 resolution-7
 * cells when none are configured) and by skill, as two tables.
 */
export function createBreakdown(el) {
  let areas = null; // the configured service area names, once known

  function table(kind, groups, label) {
    const head = h('tr', {}, h('th', {}, kind === 'skill' ? 'Skill' : 'Area'),
      ...COLUMNS.map((c) => h('th', { class: 'num', title: c.title }, c.label)));
    const rows = groups.map((g) => h('tr', { dataset: { testid: `kpi-row-${kind}-${g.key || 'none'}` } },
      h('th', { scope: 'row', title: g.key }, label(g.key)),
      ...COLUMNS.map((c) => h('td', { class: 'num', title: c.more ? c.more(g.kpis) : c.title }, c.value(g.kpis)))));
    if (!rows.length) rows.push(h('tr', {}, h('td', { colspan: String(COLUMNS.length + 1), class: 'muted' }, 'No requests today yet.')));
    return h('table', { class: 'table kpi-table', dataset: { testid: `kpi-table-${kind}` } }, h('thead', {}, head), h('tbody', {}, ...rows));
  }

  async function load() {
    const p = kpiPeriods().today;
    try {
      if (areas === null) {
        const cfg = await api.get('v1/ops/config');
        areas = Array.isArray(cfg?.service_areas) ? cfg.service_areas : [];
      }
      const byArea = areas.length ? 'area' : 'cell';
      const [a, s] = await Promise.all([
        api.get(api.withQuery('v1/kpis', { ...p, group_by: byArea })),
        api.get(api.withQuery('v1/kpis', { ...p, group_by: 'skill' })),
      ]);
      replace(el,
        h('div', { class: 'section-title' }, byArea === 'area' ? 'Today by service area' : 'Today by area (H3 cell, ≈ 5 km²)'),
        table('area', a.groups ?? [], (key) => (key ? key : (byArea === 'area' ? 'Outside the service areas' : '–'))),
        h('div', { class: 'section-title' }, 'Today by skill'),
        table('skill', s.groups ?? [], skillName),
        h('p', { class: 'muted kpi-note' }, 'Definitions: docs/kpis.md. A request counts towards on site ≤ SLA once its deadline has passed.'));
    } catch (err) {
      if (err.status !== 401) replace(el, h('p', { class: 'muted' }, 'Figures unavailable.'));
    }
  }

  return { load, reload: debounce(load, 3000, 15000) };
}
