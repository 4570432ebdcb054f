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
});
