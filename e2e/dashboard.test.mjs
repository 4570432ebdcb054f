// The ops dashboard in a real browser (Chromium through playwright-core).
//
// Starts nothing: it talks to a running Onsite at ONSITE_URL, signs in with
// ONSITE_OPS_NAME / ONSITE_OPS_PASSWORD, and makes its data through the API
// (tokens for the technicians and the customer from POST /v1/ops/tokens).
// e2e/run.sh builds and starts a server and runs this.
//
// Flow: sign in through the form → a customer request made through the API
// appears on the map and in the unassigned queue without a reload → open it →
// assign it by hand to a technician from the ranked list → the page shows it
// assigned. Screenshots (desktop 1280×800, phone 390×844) go to
// e2e/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.ONSITE_URL || '').replace(/\/+$/, '');
const OPS_NAME = process.env.ONSITE_OPS_NAME || 'e2e-dispatcher';
const OPS_PASSWORD = process.env.ONSITE_OPS_PASSWORD || '';
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const LIVE_TIMEOUT = 20_000;

if (!BASE || !OPS_PASSWORD) {
  throw new Error('set ONSITE_URL and ONSITE_OPS_PASSWORD (and optionally ONSITE_OPS_NAME), or run e2e/run.sh');
}

// ------------------------------------------------------------------ API

async function call(method, path, token, body) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (!res.ok) {
    throw new Error(`${method} ${path} → ${res.status}: ${data?.error?.message ?? text}`);
  }
  return data;
}

const rand = Math.random().toString(36).slice(2, 8);
const ZURICH = { lat: 47.3769, lng: 8.5417 };
const world = { ops: '', skill: `e2e_${rand}`, techs: [], customer: '' };

async function tokenFor(role, subject) {
  const res = await call('POST', '/v1/ops/tokens', world.ops, { role, subject });
  return res.access_token;
}

before(async () => {
  await mkdir(SHOTS, { recursive: true });
  world.ops = (await call('POST', '/v1/auth/ops', null, { name: OPS_NAME, password: OPS_PASSWORD })).access_token;
  await call('POST', '/v1/skills', world.ops, { code: world.skill, name: 'Replace a router (e2e)' });
  const expires = new Date(Date.now() + 365 * 86400_000).toISOString();
  // Two technicians near the place: the dispatcher may offer the job to one
  // of them on its own; the other stays in the ranked list for the hand.
  const spots = [
    { name: `Ada Lovelace ${rand}`, lat: ZURICH.lat + 0.006, lng: ZURICH.lng - 0.008 },
    { name: `Grace Hopper ${rand}`, lat: ZURICH.lat - 0.009, lng: ZURICH.lng + 0.011 },
  ];
  for (const [i, s] of spots.entries()) {
    const phone = `+4179${String(Date.now() + i).slice(-7)}`;
    const t = await call('POST', '/v1/technicians', world.ops, { name: s.name, phone, travel_mode: 'bike', capacity: 1 });
    await call('PUT', `/v1/technicians/${t.id}/certifications/${world.skill}`, world.ops, { expires_at: expires });
    const tok = await tokenFor('technician', t.id);
    await call('POST', '/v1/me/location', tok, { lat: s.lat, lng: s.lng });
    await call('PUT', '/v1/me/duty', tok, { status: 'available' });
    world.techs.push({ ...t, token: tok });
  }
  world.customerId = `e2e-customer-${rand}`;
  world.customer = await tokenFor('customer', world.customerId);
});

// ------------------------------------------------------------------ browser

const opened = [];

async function browser(viewport, extra = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'onsite-e2e-chromium-'));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport,
    ...extra,
  });
  opened.push({ ctx, dir });
  // Whatever the Content-Security-Policy refuses is kept on the page, so a
  // test can check that the page needs nothing the policy forbids.
  await ctx.addInitScript(() => {
    window.__cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
    });
  });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  page.on('pageerror', (err) => console.error('page error:', err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') console.error('console:', msg.text());
  });
  return page;
}

after(async () => {
  for (const { ctx, dir } of opened) {
    await ctx.close().catch(() => {});
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  }
});

const tid = (id) => `[data-testid="${id}"]`;

async function signIn(page) {
  await page.goto(`${BASE}/`);
  await page.locator(tid('login-form')).waitFor();
  await page.fill(tid('login-name'), OPS_NAME);
  await page.fill(tid('login-password'), OPS_PASSWORD);
  await page.click(tid('login-submit'));
  await page.locator(tid('app')).waitFor({ state: 'visible' });
  await page.locator(`${tid('conn-status')}[data-state="live"]`).waitFor({ timeout: LIVE_TIMEOUT });
}

test('a wrong password is refused on the page', async () => {
  const page = await browser({ width: 1280, height: 800 });
  await page.goto(`${BASE}/`);
  await page.fill(tid('login-name'), OPS_NAME);
  await page.fill(tid('login-password'), 'not-the-password');
  await page.click(tid('login-submit'));
  await page.locator(`${tid('login-error')}:visible`).waitFor();
  assert.match(await page.textContent(tid('login-error')), /wrong name or password/i);
  assert.equal(await page.locator(tid('app')).isVisible(), false);
});

let request; // the request the flow makes
let assignedTo; // the technician it was given to

test('desktop: a new request shows up live and is assigned by hand', async () => {
  const page = await browser({ width: 1280, height: 800 });
  await signIn(page);

  // The technicians are on the map, by duty.
  for (const t of world.techs) {
    await page.locator(`${tid(`map-tech-${t.id}`)}[data-status="available"]`).waitFor({ state: 'attached' });
  }

  // From here on the page must not reload: a marker on window would vanish.
  await page.evaluate(() => {
    window.__e2eNoReload = true;
  });

  request = await call('POST', '/v1/requests', world.customer, {
    skill: world.skill,
    lat: ZURICH.lat,
    lng: ZURICH.lng,
    address: 'Bahnhofstrasse 1, 8001 Zürich',
    notes: 'Router dead since this morning (e2e)',
  });
  assert.equal(request.state, 'searching');

  // Live: the queue and the map get it from the stream.
  const item = page.locator(`${tid('queue-unassigned-list')} ${tid(`queue-item-${request.id}`)}`);
  await item.waitFor({ timeout: LIVE_TIMEOUT });
  await page.locator(tid(`map-request-${request.id}`)).waitFor({ state: 'attached', timeout: LIVE_TIMEOUT });
  assert.match(await item.textContent(), /Bahnhofstrasse 1/);
  assert.match(await item.locator(tid('countdown')).textContent(), /left$/);
  assert.equal(await page.evaluate(() => window.__e2eNoReload), true, 'the page reloaded');

  // Open it: the panel shows the request, its timeline and the ranked technicians.
  await item.click();
  const panel = page.locator(`${tid('request-detail')}[data-request-id="${request.id}"]`);
  await panel.waitFor();
  await panel.locator(`${tid('timeline-event')}[data-type="created"]`).waitFor();
  const ours = world.techs.map((t) => `${tid(`assign-${t.id}`)}`).join(', ');

  // Assign by hand to a technician from the ranked list. The dispatcher may
  // offer the job to one of them meanwhile (then it leaves the list); try
  // again with whoever is listed.
  let done = false;
  for (let attempt = 0; attempt < 4 && !done; attempt++) {
    const button = panel.locator(`${tid('candidates')}`).locator(ours).first();
    await button.waitFor({ timeout: LIVE_TIMEOUT });
    const testid = await button.getAttribute('data-testid');
    const techId = testid.replace(/^assign-/, '');
    await button.click().catch(() => {});
    try {
      await panel.locator(`${tid('detail-state')}[data-state="assigned"]`).waitFor({ timeout: 8000 });
      assignedTo = world.techs.find((t) => t.id === techId);
      done = true;
    } catch {
      /* the list changed under the click: try again */
    }
  }
  assert.ok(done, 'the request did not become assigned');

  // The page agrees with the server, without a reload.
  const fresh = await call('GET', `/v1/requests/${request.id}`, world.ops);
  assert.equal(fresh.state, 'assigned');
  assert.equal(fresh.technician_id, assignedTo.id);
  await page.locator(`${tid('queue-in-progress-list')} ${tid(`queue-item-${request.id}`)}[data-state="assigned"]`).waitFor({ timeout: LIVE_TIMEOUT });
  assert.equal(await page.locator(`${tid('queue-unassigned-list')} ${tid(`queue-item-${request.id}`)}`).count(), 0);
  await page.locator(`${tid(`map-request-${request.id}`)}[data-state="assigned"]`).waitFor({ state: 'attached' });
  assert.match(await panel.locator(tid('detail-technician')).textContent(), new RegExp(assignedTo.name));
  await panel.locator(`${tid('timeline-event')}[data-type="assigned"]`).waitFor({ timeout: LIVE_TIMEOUT });
  await page.locator(`path.route-${request.id}`).waitFor({ state: 'attached', timeout: LIVE_TIMEOUT });
  assert.equal(await page.evaluate(() => window.__e2eNoReload), true, 'the page reloaded');

  // The technician is busy now, on the map too; and the H3 layer shows the
  // request's cell short of technicians (its one technician is taken).
  await page.locator(`${tid(`map-tech-${assignedTo.id}`)}[data-status="busy"]`).waitFor({ state: 'attached', timeout: LIVE_TIMEOUT });
  await page.locator('path.heat-short[data-open="1"][data-available="0"]').first().waitFor({ state: 'attached', timeout: LIVE_TIMEOUT });
  await page.locator('path.heat-spare').first().waitFor({ state: 'attached' });

  await page.mouse.move(1, 1); // no hover tooltip in the picture
  await page.waitForTimeout(600); // let the map settle
  await page.screenshot({ path: join(SHOTS, 'desktop.png') });

  // The technicians tab.
  await page.click(tid('tab-technicians'));
  await page.fill(tid('tech-search'), rand);
  for (const t of world.techs) await page.locator(tid(`tech-row-${t.id}`)).waitFor();
  await page.locator(tid(`cert-${world.techs[0].id}-${world.skill}`)).waitFor();
  await page.screenshot({ path: join(SHOTS, 'desktop-technicians.png') });
  assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], 'the page broke its own Content-Security-Policy');
});

test('phone: the panels stack and the request opens full screen', async () => {
  assert.ok(request, 'the desktop flow made no request');
  const page = await browser({ width: 390, height: 844 }, { isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  await signIn(page);
  const item = page.locator(`${tid('queue-in-progress-list')} ${tid(`queue-item-${request.id}`)}`);
  await item.waitFor({ timeout: LIVE_TIMEOUT });

  // Stacked: the map above the queues, both the full width.
  const map = await page.locator(tid('map')).boundingBox();
  const queues = await page.locator(tid('panel-queues')).boundingBox();
  assert.ok(map.width >= 380 && queues.width >= 380, `not full width: map ${map.width}, queues ${queues.width}`);
  assert.ok(queues.y >= map.y + map.height - 1, 'the queues are not below the map');

  await page.mouse.move(1, 1); // no hover tooltip in the picture
  await page.waitForTimeout(600);
  await page.screenshot({ path: join(SHOTS, 'phone.png') });

  await item.click();
  const panel = page.locator(`${tid('request-detail')}[data-request-id="${request.id}"]`);
  await panel.locator(`${tid('detail-state')}[data-state="assigned"]`).waitFor();
  const box = await panel.boundingBox();
  assert.ok(box.width >= 380, 'the request panel is not full width on a phone');
  await panel.locator(`${tid('timeline-event')}[data-type="assigned"]`).waitFor({ timeout: LIVE_TIMEOUT });
  await page.screenshot({ path: join(SHOTS, 'phone-request.png') });
  await page.click(tid('detail-close'));
  await panel.waitFor({ state: 'hidden' });
  assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], 'the page broke its own Content-Security-Policy');
});

// ------------------------------------------------------------------ figures

// The Figures tab shows today's KPIs by area and by skill, as GET /v1/kpis
// counts them. The flow's technician says they have arrived from where they
// are (about 1 km away: farther than the arrival radius, so the arrival is
// flagged) and closes the job needs_parts, which opens a follow-up.
test('figures: the KPIs by area and skill, a flagged arrival and a follow-up', async () => {
  assert.ok(request && assignedTo, 'the desktop flow assigned no request');
  const arrived = await call('POST', `/v1/jobs/${request.id}/arrived`, assignedTo.token);
  assert.equal(arrived.arrival_flagged, true);
  assert.ok(arrived.arrival_distance_m > 250, `arrival ${arrived.arrival_distance_m} m from the site`);
  await call('POST', `/v1/jobs/${request.id}/complete`, assignedTo.token, { outcome: 'needs_parts', reason: 'a new modem' });
  const pending = await call('GET', '/v1/requests?state=pending_confirmation', world.ops);
  const followUp = pending.items.find((r) => r.follow_up_of === request.id);
  assert.ok(followUp, 'no follow-up opened');
  assert.equal(followUp.preferred_technician_id, assignedTo.id);

  const page = await browser({ width: 1280, height: 800 });
  await signIn(page);
  await page.click(tid('tab-figures'));
  const skillRow = page.locator(tid(`kpi-row-skill-${world.skill}`));
  await skillRow.waitFor({ timeout: LIVE_TIMEOUT });
  await page.locator(tid('kpi-table-area')).waitFor();

  const midnight = new Date();
  midnight.setHours(0, 0, 0, 0);
  const period = `from=${encodeURIComponent(midnight.toISOString())}&to=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`;
  const bySkill = await call('GET', `/v1/kpis?${period}&group_by=skill`, world.ops);
  const ours = bySkill.groups.find((g) => g.key === world.skill).kpis;
  // The request and its follow-up; its first visit not fixed; one flagged arrival.
  assert.equal(ours.requests, 2);
  assert.equal(ours.first_visits, 1);
  assert.equal(ours.first_time_fix_rate, 0);
  assert.equal(ours.follow_ups, 1);
  assert.equal(ours.flagged_arrivals, 1);
  const cells = await skillRow.locator('td').allTextContents();
  assert.equal(cells[0], '2', `requests in ${cells}`);
  assert.equal(cells[3], '0%', `FCR in ${cells}`);
  assert.equal(cells[6], '1', `flagged in ${cells}`);

  // By area: no service areas are configured, so by H3 cell; the request's
  // cell agrees with the API.
  const inCell = await call('GET', `/v1/kpis?${period}&group_by=cell&skill=${world.skill}`, world.ops);
  assert.equal(inCell.groups.length, 1);
  const cell = inCell.groups[0].key;
  const byCell = await call('GET', `/v1/kpis?${period}&group_by=cell`, world.ops);
  const all = byCell.groups.find((g) => g.key === cell).kpis;
  const areaCells = await page.locator(tid(`kpi-row-area-${cell}`)).locator('td').allTextContents();
  assert.equal(areaCells[0], String(all.requests));
  assert.equal(areaCells[6], String(all.flagged_arrivals));

  // A filter the API does not know is refused, never ignored.
  const bad = await fetch(`${BASE}/v1/kpis?region=${cell}`, { headers: { Authorization: `Bearer ${world.ops}` } });
  assert.equal(bad.status, 422);
  assert.equal((await bad.json()).error.field, 'region');

  // The request panel shows the flagged arrival and the follow-up's link.
  await page.click(tid('tab-queues'));
  await page.evaluate((id) => {
    location.hash = `#request/${encodeURIComponent(id)}`;
  }, followUp.id);
  const panel = page.locator(`${tid('request-detail')}[data-request-id="${followUp.id}"]`);
  await panel.locator(tid('detail-follow-up-of')).waitFor({ timeout: LIVE_TIMEOUT });
  await panel.locator(tid('detail-follow-up-of')).click();
  const first = page.locator(`${tid('request-detail')}[data-request-id="${request.id}"]`);
  await first.locator(tid('detail-arrival-flagged')).waitFor({ timeout: LIVE_TIMEOUT });
  await first.locator(`${tid('timeline-event')}[data-type="follow_up_opened"]`).waitFor({ timeout: LIVE_TIMEOUT });
  await page.click(tid('tab-figures'));
  await skillRow.waitFor();
  await page.screenshot({ path: join(SHOTS, 'desktop-figures.png') });
  assert.deepEqual(await page.evaluate(() => window.__cspViolations), [], 'the page broke its own Content-Security-Policy');
});

// ------------------------------------------------------------------ untrusted text

// What customers, technicians and the API say is shown as text, never run as
// markup. The page is opened with its Content-Security-Policy switched off
// (bypassCSP), so that the page's own handling is what is tested: with the
// policy on, an inline handler that got in would be blocked and this test
// could not see it.
const EVIL_ADDRESS = '<img src=x onerror="window.__xss=1">';
const EVIL_TECH = '<script>window.__xss=2</script>';
const EVIL_SKILL = '<img src=x onerror="window.__xss=3">';
const EVIL_REASON = '<img src=x onerror="window.__xss=4"><b>cancelled</b>';
const EVIL_ERROR = '<img src=x onerror="window.__xss=5"> went wrong';
const EVIL_LOGIN = '<img src=x onerror="window.__xss=6"> try later';
const BERN = { lat: 46.948, lng: 7.4474 };

test('text from customers, technicians and the API is shown literally, never run', async () => {
  // Data made through the API: a skill, a technician on duty certified for
  // it, and a request whose address and notes are markup.
  const skill = `xss_${rand}`;
  await call('POST', '/v1/skills', world.ops, { code: skill, name: EVIL_SKILL });
  const phone = `+4178${String(Date.now()).slice(-7)}`;
  const tech = await call('POST', '/v1/technicians', world.ops, { name: EVIL_TECH, phone, travel_mode: 'car', capacity: 1 });
  assert.equal(tech.name, EVIL_TECH, 'the API stores the name as given');
  await call('PUT', `/v1/technicians/${tech.id}/certifications/${skill}`, world.ops, {
    expires_at: new Date(Date.now() + 365 * 86400_000).toISOString(),
  });
  const techToken = await tokenFor('technician', tech.id);
  await call('POST', '/v1/me/location', techToken, { lat: BERN.lat + 0.004, lng: BERN.lng + 0.004 });
  await call('PUT', '/v1/me/duty', techToken, { status: 'available' });

  const page = await browser({ width: 1280, height: 800 }, { bypassCSP: true });
  const errors = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('dialog', (d) => d.accept());
  const apiPaths = [];
  page.on('request', (r) => {
    const u = new URL(r.url());
    if (u.origin === new URL(BASE).origin && u.pathname.startsWith('/v1/')) apiPaths.push(u.pathname);
  });
  const noXss = async (where) => {
    const got = await page.evaluate(() => ({
      xss: window.__xss,
      imgs: document.querySelectorAll('img[src="x"]').length,
      scripts: [...document.scripts].filter((s) => !s.src).length,
      bold: document.querySelectorAll('[data-testid="request-detail"] b').length,
    }));
    assert.deepEqual(got, { xss: undefined, imgs: 0, scripts: 0, bold: 0 }, `markup from data got into the page (${where})`);
  };

  // An error message from the API on the sign-in form.
  await page.route('**/v1/auth/ops', (route) => route.fulfill({
    status: 503, contentType: 'application/json', body: JSON.stringify({ error: { code: 'unavailable', message: EVIL_LOGIN } }),
  }), { times: 1 });
  await page.goto(`${BASE}/`);
  await page.fill(tid('login-name'), OPS_NAME);
  await page.fill(tid('login-password'), OPS_PASSWORD);
  await page.click(tid('login-submit'));
  await page.locator(`${tid('login-error')}:visible`).waitFor();
  assert.equal(await page.textContent(tid('login-error')), EVIL_LOGIN);
  await noXss('sign-in error');
  await page.click(tid('login-submit'));
  await page.locator(tid('app')).waitFor({ state: 'visible' });
  await page.locator(`${tid('conn-status')}[data-state="live"]`).waitFor({ timeout: LIVE_TIMEOUT });
  await page.locator(tid(`map-tech-${tech.id}`)).waitFor({ state: 'attached', timeout: LIVE_TIMEOUT });

  const req = await call('POST', '/v1/requests', world.customer, {
    skill, lat: BERN.lat, lng: BERN.lng, address: EVIL_ADDRESS, notes: EVIL_ADDRESS,
  });

  // The queue: the skill's name and the address, as text.
  const item = page.locator(tid(`queue-item-${req.id}`)).first();
  await item.waitFor({ timeout: LIVE_TIMEOUT });
  assert.equal(await item.locator('.qitem-title').textContent(), EVIL_SKILL);
  assert.equal(await item.locator('.qitem-sub').textContent(), EVIL_ADDRESS);
  await noXss('queue');

  // The request panel: title, place, notes.
  await item.click();
  const panel = page.locator(`${tid('request-detail')}[data-request-id="${req.id}"]`);
  await panel.waitFor();
  assert.equal(await panel.locator(tid('detail-title')).textContent(), EVIL_SKILL);
  const facts = await panel.locator('dl.facts dd').allTextContents();
  assert.ok(facts.filter((t) => t === EVIL_ADDRESS).length >= 2, `place and notes are not shown literally: ${JSON.stringify(facts)}`);
  await panel.locator(`${tid('timeline-event')}[data-type="created"]`).waitFor();

  // The technician gets the job (by the dispatcher on its own, or by hand here).
  const now = await call('GET', `/v1/requests/${req.id}`, world.ops);
  if (now.technician_id !== tech.id) {
    await call('POST', `/v1/requests/${req.id}/assign`, world.ops, { technician_id: tech.id });
  }
  await panel.locator(`${tid('detail-state')}[data-state="assigned"]`).waitFor({ timeout: LIVE_TIMEOUT });
  await page.waitForFunction(([id, name]) => document.querySelector(`[data-testid="detail-technician"]`)?.textContent.startsWith(name) &&
    document.querySelector(`[data-testid="queue-in-progress-list"] [data-testid="queue-item-${id}"]`)?.textContent.includes(name),
  [req.id, EVIL_TECH], { timeout: LIVE_TIMEOUT });
  await page.waitForFunction((name) => [...document.querySelectorAll('[data-testid="timeline-event"][data-type="assigned"] .tl-data')]
    .some((el) => el.textContent.includes(name)), EVIL_TECH, { timeout: LIVE_TIMEOUT });
  await noXss('request panel');

  // The map: the request's and the technician's tooltips.
  await page.click(tid('detail-locate'));
  await page.waitForTimeout(600);
  await page.hover(tid(`map-request-${req.id}`));
  await page.locator('.leaflet-tooltip').first().waitFor();
  await noXss('request tooltip');
  const reqTip = page.locator('.leaflet-tooltip').filter({ hasText: EVIL_ADDRESS });
  await reqTip.waitFor({ timeout: 5000 });
  assert.equal(await reqTip.locator('strong').textContent(), EVIL_SKILL);
  assert.ok((await reqTip.textContent()).includes(EVIL_TECH), 'the technician is not named in the tooltip');
  await page.mouse.move(1, 1);
  await page.hover(tid(`map-tech-${tech.id}`));
  const techTip = page.locator('.leaflet-tooltip').filter({ hasText: EVIL_TECH, hasNotText: EVIL_ADDRESS });
  await techTip.waitFor({ timeout: 5000 });
  assert.equal(await techTip.locator('strong').textContent(), EVIL_TECH);
  await noXss('technician tooltip');
  await page.mouse.move(1, 1);

  // An error message from the API in a toast.
  await page.route('**/v1/requests/*/redispatch', (route) => route.fulfill({
    status: 409, contentType: 'application/json', body: JSON.stringify({ error: { code: 'conflict', message: EVIL_ERROR } }),
  }), { times: 1 });
  await panel.locator(tid('redispatch')).click();
  const toastEl = page.locator(tid('toast')).filter({ hasText: EVIL_ERROR });
  await toastEl.waitFor();
  assert.equal(await toastEl.textContent(), `Could not redispatch: ${EVIL_ERROR}`);
  await noXss('toast');

  // A cancel reason typed on the page comes back in the facts and the timeline.
  await panel.locator(tid('cancel-reason')).fill(EVIL_REASON);
  await panel.locator(tid('cancel-submit')).click();
  await panel.locator(`${tid('detail-state')}[data-state="cancelled"]`).waitFor({ timeout: LIVE_TIMEOUT });
  assert.ok((await panel.locator('dl.facts dd').allTextContents()).includes(EVIL_REASON), 'the cancel reason is not shown literally');
  await page.waitForFunction((reason) => [...document.querySelectorAll('[data-testid="timeline-event"][data-type="cancelled"] .tl-data')]
    .some((el) => el.textContent.includes(`“${reason}”`)), EVIL_REASON, { timeout: LIVE_TIMEOUT });
  await noXss('cancelled');
  await page.screenshot({ path: join(SHOTS, 'desktop-untrusted.png') });

  // The technicians tab: the row, the certify dialog and the skills catalog.
  await page.click(tid('tab-technicians'));
  await page.fill(tid('tech-search'), '<script>');
  const row = page.locator(tid(`tech-row-${tech.id}`));
  await row.waitFor();
  assert.equal(await row.locator('.tech-name').textContent(), EVIL_TECH);
  await row.locator(tid(`certify-${tech.id}`)).click();
  await page.locator(`${tid('certify-dialog')}[open]`).waitFor();
  assert.equal(await page.textContent('#certify-who'), EVIL_TECH);
  assert.ok((await page.locator('#certify-skill option').allTextContents()).includes(`${skill} — ${EVIL_SKILL}`), 'the skill name is not shown literally');
  await page.click('#certify-cancel');
  await page.click('summary:has-text("Skills catalog")');
  assert.match(await page.locator('.fold-body p.muted').first().textContent(), new RegExp(`${skill} \\(<img src=x onerror="window\\.__xss=3">\\)`));
  await noXss('technicians tab');

  // A link into the page cannot point the API calls elsewhere: ".." is no
  // request id, and an id that is markup is only text.
  {
    await page.click(tid('tab-queues'));
    apiPaths.length = 0;
    for (const hash of ['#request/..', '#request/%2e%2e', '#request/.%2E']) {
      await page.evaluate((h) => {
        location.hash = h;
      }, hash);
      await page.waitForTimeout(300);
      assert.equal(await page.locator(tid('request-detail')).isVisible(), false, `${hash} opened a request`);
    }
    const markupId = '<img src=x onerror="window.__xss=7">';
    await page.evaluate((h) => {
      location.hash = h;
    }, `#request/${encodeURIComponent(markupId)}`);
    await page.locator(tid('request-detail')).getByText('This request does not exist.').waitFor();
    await page.waitForTimeout(300);
    const strays = apiPaths.filter((p) => !/^\/v1\/(requests\/[^/]+(\/(events|offers|candidates))?|technicians(\/[^/]+)?|kpis|ops\/heatmap|skills|requests)$/.test(p));
    assert.deepEqual(strays, [], 'a dot segment in the address bar sent the token to another endpoint');
    await noXss('address bar');
  }

  assert.deepEqual(errors, [], 'the page threw');
  assert.equal(await page.evaluate(() => window.__xss), undefined);
  await call('PUT', '/v1/me/duty', techToken, { status: 'offline' }).catch(() => {});
});
