// Onsite ops dashboard: sign-in, then one initial load of the lists and the
// live stream for everything after it.
import * as api from './api.js';
import { store, on, emit, putRequest, putTechnician, setSkills, select } from './store.js';
import { createMap, renderLegend } from './map.js';
import { createQueues, tickCountdowns } from './queues.js';
import { createDetail } from './detail.js';
import { createTechnicians } from './technicians.js';
import { createKpis, createBreakdown } from './kpis.js';
import { connect } from './stream.js';
import { toast, debounce } from './dom.js';
import { isActive, isSafeId } from './format.js';

const SESSION_KEY = 'onsite.session';
const NOTE_KEY = 'onsite.signinNote';
const OPEN_STATES = 'searching,assigned,en_route,on_site,unfulfilled,scheduled';

const $ = (id) => document.getElementById(id);

function readSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (s && s.token && (!s.expiresAt || s.expiresAt > Date.now() + 5000)) return s;
  } catch {
    /* ignore */
  }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}

let stream = null;

function signOut(note) {
  stream?.close();
  sessionStorage.removeItem(SESSION_KEY);
  if (note) sessionStorage.setItem(NOTE_KEY, note);
  // A fresh page is the simplest way to forget everything.
  location.replace(location.pathname + location.search);
}

// ---------------------------------------------------------------- sign-in

function showSignIn() {
  $('app').hidden = true;
  $('signin').hidden = false;
  const form = $('login-form');
  const err = $('login-error');
  const note = sessionStorage.getItem(NOTE_KEY);
  sessionStorage.removeItem(NOTE_KEY);
  if (note) {
    err.textContent = note;
    err.hidden = false;
  }
  $('login-name').value = localStorage.getItem('onsite.lastName') || '';
  ($('login-name').value ? $('login-password') : $('login-name')).focus();

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const name = $('login-name').value.trim();
    const password = $('login-password').value;
    if (!name || !password) {
      err.textContent = 'Enter your name and the ops password.';
      err.hidden = false;
      return;
    }
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    btn.textContent = 'Signing in…';
    try {
      const res = await api.post('v1/auth/ops', { name, password });
      const s = { token: res.access_token, name, expiresAt: Date.now() + (res.expires_in || 3600) * 1000 };
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
      try {
        localStorage.setItem('onsite.lastName', name);
      } catch {
        /* ignore */
      }
      $('login-password').value = '';
      err.hidden = true;
      start(s);
    } catch (ex) {
      err.textContent = ex.status === 401 ? 'Wrong name or password.' : ex.message;
      err.hidden = false;
      $('login-password').select();
    } finally {
      btn.disabled = false;
      btn.textContent = 'Sign in';
    }
  });
}

// ---------------------------------------------------------------- dashboard

function start(session) {
  api.setToken(session.token);
  api.whenUnauthorized(() => signOut('Your session has ended; sign in again.'));
  $('signin').hidden = true;
  $('app').hidden = false;
  $('user-name').textContent = session.name;
  $('signout').addEventListener('click', () => signOut());
  const ttl = session.expiresAt - Date.now();
  if (ttl > 0 && ttl < 2 ** 31) setTimeout(() => signOut('Your session has ended; sign in again.'), ttl);

  const layout = document.querySelector('.layout');
  const mapApi = createMap($('map'), { onSelect: openRequest });
  renderLegend($('legend'));
  const queues = createQueues($('panel-queues'), { onSelect: openRequest });
  const techs = createTechnicians($('panel-technicians'), { onFocus: focusMap });
  const kpis = createKpis($('kpis'));
  const figures = createBreakdown($('panel-figures'));
  const detail = createDetail($('detail'), { onClose: closeRequest, onFocus: focusMap });

  function focusMap(lat, lng) {
    mapApi.focus(lat, lng);
    if (window.matchMedia('(max-width: 700px)').matches) {
      closeRequest();
      $('map').scrollIntoView({ behavior: 'smooth', block: 'start' });
    }
  }

  // Tabs.
  const tabs = [['tab-queues', 'panel-queues'], ['tab-technicians', 'panel-technicians'], ['tab-figures', 'panel-figures']];
  for (const [tab, panel] of tabs) {
    $(tab).addEventListener('click', () => {
      for (const [t, p] of tabs) {
        $(t).setAttribute('aria-selected', String(t === tab));
        $(p).hidden = t !== tab;
      }
      if (tab === 'tab-technicians') techs.render();
      else if (tab === 'tab-figures') figures.load();
      else queues.render();
    });
  }
  const figuresVisible = () => !$('panel-figures').hidden;
  const techsVisible = () => !$('panel-technicians').hidden;

  // Selection follows the URL (#request/<id>), so a request can be linked.
  function openRequest(id) {
    const want = `#request/${encodeURIComponent(id)}`;
    if (location.hash !== want) location.hash = want;
    else select(id);
  }
  function closeRequest() {
    if (location.hash) history.replaceState(null, '', location.pathname + location.search);
    select(null);
  }
  // The address bar is anyone's to write (a link): an id from it must be
  // well-formed and one path segment, else nothing is opened.
  function selectFromHash() {
    const m = location.hash.match(/^#request\/(.+)$/);
    let id = null;
    if (m) {
      try {
        id = decodeURIComponent(m[1]);
      } catch {
        id = null; // malformed %-escape
      }
    }
    select(id && isSafeId(id) ? id : null);
  }
  window.addEventListener('hashchange', selectFromHash);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && store.selected && !document.querySelector('dialog[open]')) closeRequest();
  });

  on('select', (id, prev) => {
    for (const rid of [prev, id]) {
      const r = rid && store.requests.get(rid);
      if (r) mapApi.updateRequest(r);
    }
    if (id) {
      detail.open(id);
      const r = store.requests.get(id);
      if (r) setTimeout(() => mapApi.reveal(r.lat, r.lng), 50);
    } else {
      detail.close();
    }
    layout.classList.toggle('has-detail', Boolean(id));
    setTimeout(() => mapApi.invalidate(), 0);
  });

  // Live data → views.
  let fitted = false;
  let heatSeq = 0;
  const loadHeat = async () => {
    const mine = ++heatSeq;
    try {
      const res = await api.get(`v1/ops/heatmap?resolution=${mapApi.heatResolution()}`);
      if (mine === heatSeq) mapApi.setHeat(res.cells ?? []);
    } catch {
      /* the layer is optional */
    }
  };
  const reloadHeat = debounce(loadHeat, 2000, 8000);
  mapApi.onHeatResolution(() => loadHeat());
  let bulk = false; // true while a whole list goes into the store
  on('request', (r, prev) => {
    if (!bulk) techsOfChange(prev, r);
    mapApi.updateRequest(r);
    kpis.reload();
    if (figuresVisible()) figures.reload();
    reloadHeat();
    if (!fitted) fitted = mapApi.fitOnce();
  });
  on('technician', (t) => {
    mapApi.updateTechnician(t);
    reloadHeat();
    if (!fitted) fitted = mapApi.fitOnce();
  });
  on('changed', () => {
    queues.render();
    if (techsVisible()) techs.render();
    kpis.paintLive();
  });

  // The clock: countdowns every second; what depends on time passing (a
  // deadline going by) every 5 seconds. No state is fetched here.
  let ticks = 0;
  setInterval(() => {
    tickCountdowns(document);
    if (++ticks % 5 === 0) {
      mapApi.refreshIcons();
      emit('changed');
    }
    if (ticks % 60 === 0) prune();
  }, 1000);

  // Finished requests leave the views at once; forget them after a while.
  function prune() {
    const cutoff = Date.now() - 15 * 60_000;
    for (const [id, r] of store.requests) {
      if (!isActive(r) && id !== store.selected && (Date.parse(r.updated_at) || 0) < cutoff) store.requests.delete(id);
    }
  }

  // Connection badge.
  const conn = $('conn');
  const CONN_TEXT = { connecting: 'Connecting…', live: 'Live', offline: 'Offline — retrying' };
  const setConn = (state) => {
    conn.dataset.state = state;
    conn.querySelector('.conn-text').textContent = CONN_TEXT[state] ?? state;
  };

  // A request changing hands or ending changes its technicians (busy,
  // available, jobs held): read them again unless the stream already brought
  // them. Only for single changes (the stream, an action), never for a list.
  const staleTechs = new Map(); // id → time of the request change
  const refreshTechs = debounce(() => {
    for (const [tid, since] of staleTechs) {
      staleTechs.delete(tid);
      const held = store.technicians.get(tid);
      if (held && Date.parse(held.updated_at) >= since) continue;
      api.get(`v1/technicians/${api.enc(tid)}`).then(putTechnician).catch(() => {});
    }
  }, 400, 1500);
  function techsOfChange(prev, r) {
    if (prev && prev.state === r.state && prev.technician_id === r.technician_id) return;
    const since = Date.parse(r.updated_at) || Date.now();
    for (const tid of new Set([prev?.technician_id, r.technician_id])) {
      if (tid) staleTechs.set(tid, since);
    }
    if (staleTechs.size) refreshTechs();
  }

  // Lists once, then the stream. After a broken stream is opened again the
  // lists are read again (resync), in case it missed something.
  let loaded = false;
  async function loadLists() {
    try {
      const [reqs, tech, skills] = await Promise.all([
        api.get(`v1/requests?state=${OPEN_STATES}&limit=500`),
        api.get('v1/technicians?limit=500'),
        api.get('v1/skills'),
      ]);
      const seen = new Set();
      bulk = true;
      try {
        for (const r of reqs.items ?? []) {
          seen.add(r.id);
          putRequest(r);
        }
        for (const t of tech.items ?? []) putTechnician(t);
      } finally {
        bulk = false;
      }
      setSkills(skills.items ?? []);
      // Requests held as open but missing from the answer have finished meanwhile.
      const gone = [...store.requests.values()].filter((r) => isActive(r) && !seen.has(r.id)).slice(0, 50);
      await Promise.all(gone.map((r) => api.get(`v1/requests/${api.enc(r.id)}`).then(putRequest).catch(() => {})));
      loaded = true;
      fitted = mapApi.fitOnce() || fitted;
      queues.render();
      techs.render();
      kpis.paintLive();
    } catch (err) {
      if (err.status !== 401) toast(`Could not load the dashboard: ${err.message}`, 'error');
    }
  }

  stream = connect({
    token: session.token,
    onStatus: setConn,
    onEvent: (type, data) => {
      if (type === 'request') {
        putRequest(data);
      } else if (type === 'technician') {
        putTechnician(data);
      }
    },
    onResync: () => {
      if (loaded) {
        loadLists();
        kpis.load();
        loadHeat();
      }
    },
  });

  api.get('v1/ops/config')
    .then((cfg) => mapApi.setTiles(cfg?.tile_url || '', cfg?.tile_attribution || ''))
    .catch(() => mapApi.setTiles('', ''));

  stream.ready.then(async () => {
    await loadLists();
    kpis.load();
    loadHeat();
    selectFromHash();
  });
}

// ---------------------------------------------------------------- boot

function boot() {
  if (!window.L) {
    document.body.textContent = 'The map library did not load (static/vendor/leaflet/leaflet.js).';
    return;
  }
  const s = readSession();
  if (s) start(s);
  else showSignIn();
}

boot();
