// The dashboard's pure rules (web/static/js/format.js), without a browser or
// a server: countdowns, at-risk reasons, merge stamps, KPI trends and periods,
// the demand/supply colours.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  countdown, duration, distance, pct, riskReason, stamp, trend, kpiPeriods, heatStyle, can, shortId, offerWhy, eventSummary,
  escapeHtml, safeUrl, isSafeId,
} from '../web/static/js/format.js';

const NOW = Date.parse('2026-03-10T12:00:00Z');
const at = (minutes) => new Date(NOW + minutes * 60_000).toISOString();

test('countdown counts down and past zero', () => {
  assert.equal(countdown(12 * 60_000 + 5_000), '12:05');
  assert.equal(countdown(59_999), '0:59');
  assert.equal(countdown(-190_000), '−3:10');
  assert.equal(countdown(3_725_000), '1:02:05');
});

test('durations, distances and shares read like a dispatcher talks', () => {
  assert.equal(duration(45), '45 s');
  assert.equal(duration(300), '5 min');
  assert.equal(duration(3900), '1 h 5 min');
  assert.equal(duration(null), '–');
  assert.equal(distance(850), '850 m');
  assert.equal(distance(1234), '1.2 km');
  assert.equal(distance(23456), '23 km');
  assert.equal(pct(0.923), '92%');
  assert.equal(shortId('01a21dfd-f789-714c-a79b-f33d71a72d04'), '…a72d04');
});

test('a request is at risk when flagged, late or overdue, and only before the technician is on site', () => {
  const base = { state: 'searching', at_risk: false, sla_deadline: at(30), eta_at: null };
  assert.equal(riskReason(base, NOW), '');
  assert.equal(riskReason({ ...base, at_risk: true }, NOW), 'no one in time');
  assert.equal(riskReason({ ...base, at_risk: true, escalation: 3 }, NOW), 'paged: no one in time');
  assert.equal(riskReason({ ...base, sla_deadline: at(-1) }, NOW), 'overdue');
  assert.equal(riskReason({ ...base, state: 'assigned', eta_at: at(35) }, NOW), 'late ETA');
  assert.equal(riskReason({ ...base, state: 'assigned', eta_at: at(25) }, NOW), '');
  assert.equal(riskReason({ ...base, state: 'on_site', at_risk: true, sla_deadline: at(-5) }, NOW), '');
  assert.equal(riskReason({ ...base, state: 'unfulfilled', at_risk: true }, NOW), '');
});

test('the newest version of an item wins, whichever way it came', () => {
  const older = { updated_at: '2026-03-10T12:00:00.100Z' };
  const newer = { updated_at: '2026-03-10T12:00:00.200Z' };
  assert.ok(stamp(newer) > stamp(older));
  // A technician's position report counts as a change.
  assert.ok(stamp({ ...older, position_at: '2026-03-10T12:00:01Z' }) > stamp(newer));
});

test('trends compare with yesterday and know which way is good', () => {
  assert.deepEqual(trend(0.8, 0.7, 'share', true), { text: '▲ 10 pts vs yesterday', tone: 'good' });
  assert.deepEqual(trend(0.6, 0.7, 'share', true), { text: '▼ 10 pts vs yesterday', tone: 'bad' });
  assert.deepEqual(trend(1500, 1800, 'seconds', false), { text: '▼ 5 min vs yesterday', tone: 'good' });
  assert.equal(trend(0.5, 0.5, 'share', true).text, '= yesterday');
  assert.equal(trend(0.5, null, 'share', true).text, 'no data yesterday');
});

test("today's period and yesterday's same period", () => {
  const p = kpiPeriods(NOW);
  const len = (x) => Date.parse(x.to) - Date.parse(x.from);
  assert.equal(len(p.today), len(p.yesterday));
  assert.equal(Date.parse(p.today.from) - Date.parse(p.yesterday.from), 86_400_000);
  assert.ok(Date.parse(p.today.to) <= NOW + 60_000);
  // Just after midnight the period is not empty (the API needs to > from).
  const mid = new Date(NOW);
  mid.setHours(0, 0, 1, 0);
  const q = kpiPeriods(mid.getTime());
  assert.ok(Date.parse(q.today.to) > Date.parse(q.today.from));
});

test('cells short of technicians are red, balanced amber, spare green', () => {
  assert.equal(heatStyle(3, 1).kind, 'short');
  assert.ok(heatStyle(5, 0).opacity > heatStyle(1, 0).opacity);
  assert.equal(heatStyle(2, 2).kind, 'balanced');
  assert.equal(heatStyle(0, 4).kind, 'spare');
});

test('actions follow the lifecycle', () => {
  assert.ok(can({ state: 'searching' }, 'assign'));
  assert.ok(can({ state: 'en_route' }, 'assign'));
  assert.ok(!can({ state: 'on_site' }, 'assign'));
  assert.ok(can({ state: 'unfulfilled' }, 'redispatch'));
  assert.ok(!can({ state: 'scheduled' }, 'redispatch'));
  assert.ok(can({ state: 'assigned' }, 'cancel'));
  assert.ok(!can({ state: 'on_site' }, 'cancel'));
});

test('an offer says why it went where it went', () => {
  const why = offerWhy({ strategy: 'wave', round: 2, rank: 1, eta_s: 420, distance_m: 2300, on_time_chance: 0.91, accept_rate: 0.8, rating: 4.7, idle_s: 0, timeout_s: 30 });
  assert.match(why, /^wave offer, round 2, rank 1 · 7 min away \(2\.3 km\) · 91% chance on time · accepts 80% of offers · rated 4\.7 · 30 s to answer$/);
  const ev = { type: 'assigned', data: { from: 'searching', to: 'assigned', technician_id: 't1', by_hand: true } };
  assert.equal(eventSummary(ev, () => 'Ada'), 'Searching → Assigned · Ada · by hand');
  const far = { type: 'on_site', data: { from: 'en_route', to: 'on_site', distance_m: 2000, arrival_flagged: true, arrival_why: '2000 m from the site (more than 250 m)' } };
  assert.equal(eventSummary(far), 'En route → On site · arrival flagged: 2000 m from the site (more than 250 m)');
  const opened = { type: 'follow_up_opened', data: { follow_up_id: '0193abcdef123456', outcome: 'needs_parts', reason: 'modem' } };
  assert.equal(eventSummary(opened), '“modem” · Needs parts · follow-up …123456');
});

test('escapeHtml leaves no markup and no way out of a quoted attribute', () => {
  const evil = `<img src=x onerror="window.__xss=1">&'\``;
  const out = escapeHtml(evil);
  assert.equal(out, '&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;&amp;&#39;&#96;');
  assert.doesNotMatch(out, /[<>"'`]/);
  assert.equal(escapeHtml('&lt;'), '&amp;lt;', 'escapes what is already escaped (no double meaning)');
  assert.equal(escapeHtml(null), '');
  assert.equal(escapeHtml(42), '42');
  assert.equal(escapeHtml('Zürich · OK'), 'Zürich · OK');
});

test('safeUrl lets only http(s), mailto, tel and relative URLs through', () => {
  for (const ok of ['https://tiles.example/{z}/{x}/{y}.png', 'http://a.b/c', 'mailto:a@b.c', 'tel:+41791234567', 'static/x.png', '/v1/x', '#request/1', '?a=1']) {
    assert.equal(safeUrl(ok), ok);
  }
  for (const bad of ['javascript:alert(1)', 'JavaScript:alert(1)', ' javascript:alert(1)', 'java\tscript:alert(1)', 'java\nscript:x',
    '\u0001javascript:x', 'data:text/html,<script>alert(1)</script>', 'vbscript:x', 'blob:https://x/1']) {
    assert.equal(safeUrl(bad), 'about:blank', bad);
  }
});

test('isSafeId refuses ids that are not one path segment', () => {
  assert.ok(isSafeId('01a21dfd-f789-714c-a79b-f33d71a72d04'));
  assert.ok(isSafeId('<img src=x>'), 'markup is only text; encodeURIComponent makes it one segment');
  for (const bad of ['', '.', '..', '%2e', '%2E%2e', '.%2e', 'a\nb', 'x'.repeat(201), null, undefined]) {
    assert.ok(!isSafeId(bad), JSON.stringify(bad));
  }
});
