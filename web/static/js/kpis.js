// KPI tiles for today, each with its trend against yesterday's same period
// (midnight to the same time of day). The figures come from GET v1/kpis and
// are fetched again after request changes (debounced); open requests and
// available technicians are counted live from the store.
import * as api from './api.js';
import { store } from './store.js';
import { h, replace, debounce } from './dom.js';
import { pct, duration, trend, kpiPeriods, isActive, isAtRisk, UNASSIGNED_STATES } from './format.js';

// The API answers 0 for a share with nothing to divide by; `has` tells a
// real 0 from "no data yet", shown as a dash.
const TILES = [
  {
    key: 'on_site_within_60_share', label: 'On site ≤ 60 min', title: 'Share of decided ASAP requests with a technician on site within the SLA',
    fmt: pct, kind: 'share', higher: true,
    has: (k) => k.asap_requests > 0 && (k.on_site_within_60_share > 0 || k.time_to_site_p50_s !== null || k.unfulfilled > 0),
  },
  {
    key: 'time_to_site_p50_s', label: 'Time to site', title: 'Median time from request to technician on site (ASAP)',
    fmt: duration, kind: 'seconds', higher: false, has: (k) => k.time_to_site_p50_s !== null && k.time_to_site_p50_s !== undefined,
  },
  {
    key: 'acceptance_rate', label: 'Acceptance', title: 'Offers accepted / offers answered or expired',
    fmt: pct, kind: 'share', higher: true, has: (k) => k.acceptance_rate > 0 || k.offers_per_request > 0,
  },
  {
    key: 'first_time_fix_rate', label: 'First-time fix', title: 'Completed requests fixed on the first visit',
    fmt: pct, kind: 'share', higher: true, has: (k) => k.completed > 0,
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
