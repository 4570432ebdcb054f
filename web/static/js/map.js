// The live map (Leaflet, vendored): technicians by duty, requests by state
// (at-risk ones pulse), a line from each assigned technician to its request,
// and the H3 demand/supply layer. Works without a tile server: then a light
// graticule on a plain background.
import { store, techName, skillName } from './store.js';
import { h, replace } from './dom.js';
import { ACTIVE_STATES, stateLabel, riskReason, place, ago, heatStyle, escapeHtml, safeUrl } from './format.js';

const L = window.L;
const ROUTE_COLORS = { assigned: '#0891b2', en_route: '#0d9488' };
const VIEW_KEY = 'onsite.mapView';

// Markers, tooltips and icons are DOM nodes built with h() (text only):
// Leaflet would parse a string as HTML.

export function createMap(el, { onSelect }) {
  const map = L.map(el, { zoomControl: true, worldCopyJump: true, minZoom: 2, maxZoom: 19 });
  const saved = readView();
  // Once the dispatcher moves the map, live data never moves it again.
  let userMoved = Boolean(saved);
  if (saved) map.setView([saved.lat, saved.lng], saved.zoom);
  else map.setView([30, 0], 2);
  const moved = () => {
    userMoved = true;
  };
  map.on('dragstart', moved);
  el.addEventListener('wheel', moved, { passive: true });
  el.addEventListener('dblclick', moved);
  L.DomEvent.on(map.zoomControl.getContainer(), 'click', moved);
  map.on('moveend', () => {
    if (!userMoved) return;
    const c = map.getCenter();
    try {
      localStorage.setItem(VIEW_KEY, JSON.stringify({ lat: c.lat, lng: c.lng, zoom: map.getZoom() }));
    } catch {
      /* private mode */
    }
  });

  map.createPane('heat').style.zIndex = 350;
  map.createPane('routes').style.zIndex = 420;
  L.control.scale({ imperial: false, position: 'bottomright' }).addTo(map);

  const heatLayer = L.layerGroup().addTo(map);
  const routeLayer = L.layerGroup().addTo(map);
  const techLayer = L.layerGroup().addTo(map);
  const reqLayer = L.layerGroup().addTo(map);
  let graticule = null;

  L.control
    .layers(null, {
      'Demand / supply (H3)': heatLayer,
      Routes: routeLayer,
      Technicians: techLayer,
      Requests: reqLayer,
    }, { position: 'topright' })
    .addTo(map);

  const Fit = L.Control.extend({
    onAdd() {
      const box = L.DomUtil.create('div', 'leaflet-bar');
      const b = L.DomUtil.create('button', 'map-btn', box);
      b.type = 'button';
      b.title = 'Show everything';
      b.setAttribute('aria-label', 'Show everything');
      b.dataset.testid = 'map-fit';
      b.textContent = '⤢';
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.on(b, 'click', () => fitAll(true));
      return box;
    },
  });
  new Fit({ position: 'topleft' }).addTo(map);

  const reqMarkers = new Map(); // request id → {marker, key}
  const techMarkers = new Map(); // technician id → {marker, key}
  const routes = new Map(); // request id → polyline
  const heatCells = new Map(); // cell → {polygon, key}

  // ---- requests ----
  function reqIconKey(r) {
    const risky = riskReason(r) ? ' risky' : '';
    const sel = store.selected === r.id ? ' selected' : '';
    return `mk-req st-${r.state}${risky}${sel}`;
  }

  function reqIcon(r, key) {
    return L.divIcon({
      className: 'mk',
      iconSize: [20, 20],
      iconAnchor: [10, 10],
      html: h('span', {
        class: key,
        dataset: { testid: `map-request-${r.id}`, state: r.state, risk: riskReason(r) ? 'true' : null },
      }),
    });
  }

  function updateRequest(r) {
    const held = reqMarkers.get(r.id);
    const show = ACTIVE_STATES.includes(r.state) && typeof r.lat === 'number' && typeof r.lng === 'number';
    if (!show) {
      if (held) {
        reqLayer.removeLayer(held.marker);
        reqMarkers.delete(r.id);
      }
      updateRoute(r);
      return;
    }
    const key = reqIconKey(r);
    if (!held) {
      const marker = L.marker([r.lat, r.lng], { icon: reqIcon(r, key), riseOnHover: true, zIndexOffset: 500, keyboard: true });
      marker.bindTooltip(() => reqTip(store.requests.get(r.id) ?? r), { className: 'tip', direction: 'top', offset: [0, -8] });
      marker.on('click', () => onSelect(r.id));
      marker.addTo(reqLayer);
      reqMarkers.set(r.id, { marker, key });
    } else {
      held.marker.setLatLng([r.lat, r.lng]);
      if (held.key !== key) {
        held.marker.setIcon(reqIcon(r, key));
        held.key = key;
      }
      held.marker.setZIndexOffset(riskReason(r) ? 1000 : 500);
    }
    updateRoute(r);
  }

  function reqTip(r) {
    const risk = riskReason(r);
    return h('div', null,
      h('strong', null, skillName(r.skill)), ' · ', stateLabel(r.state),
      risk ? h('div', { class: 'tip-risk' }, `At risk: ${risk}`) : null,
      h('div', null, place(r)),
      r.technician_id ? h('div', null, techName(r.technician_id)) : null,
    );
  }

  // ---- technicians ----
  function techIconKey(t) {
    return `mk-tech duty-${t.duty_status}${t.suspended ? ' suspended' : ''}`;
  }

  function techIcon(t, key) {
    return L.divIcon({
      className: 'mk',
      iconSize: [18, 18],
      iconAnchor: [9, 9],
      html: h('span', { class: key, dataset: { testid: `map-tech-${t.id}`, status: t.duty_status } }),
    });
  }

  function updateTechnician(t) {
    const held = techMarkers.get(t.id);
    const show = typeof t.lat === 'number' && typeof t.lng === 'number';
    if (!show) {
      if (held) {
        techLayer.removeLayer(held.marker);
        techMarkers.delete(t.id);
      }
    } else {
      const key = techIconKey(t);
      const z = t.duty_status === 'available' ? 300 : t.duty_status === 'busy' ? 200 : 0;
      if (!held) {
        const marker = L.marker([t.lat, t.lng], { icon: techIcon(t, key), zIndexOffset: z, keyboard: false });
        marker.bindTooltip(() => techTip(store.technicians.get(t.id) ?? t), { className: 'tip', direction: 'top', offset: [0, -8] });
        marker.addTo(techLayer);
        techMarkers.set(t.id, { marker, key });
      } else {
        held.marker.setLatLng([t.lat, t.lng]);
        held.marker.setZIndexOffset(z);
        if (held.key !== key) {
          held.marker.setIcon(techIcon(t, key));
          held.key = key;
        }
      }
    }
    for (const r of store.requests.values()) {
      if (r.technician_id === t.id) updateRoute(r);
    }
  }

  function techTip(t) {
    const jobs = `${t.active_jobs}/${t.capacity} job${t.capacity === 1 ? '' : 's'}`;
    return h('div', null,
      h('strong', null, t.name), ' · ', t.suspended ? 'suspended' : t.duty_status,
      h('div', null, `${jobs} · ${t.travel_mode}`),
      t.position_at ? h('div', null, `position ${ago(t.position_at)}`) : null,
    );
  }

  // ---- routes ----
  function updateRoute(r) {
    const line = routes.get(r.id);
    const t = r.technician_id ? store.technicians.get(r.technician_id) : null;
    const color = ROUTE_COLORS[r.state];
    if (!color || !t || typeof t.lat !== 'number' || typeof r.lat !== 'number') {
      if (line) {
        routeLayer.removeLayer(line);
        routes.delete(r.id);
      }
      return;
    }
    const pts = [[t.lat, t.lng], [r.lat, r.lng]];
    const style = { color, weight: 3, opacity: 0.9, dashArray: r.state === 'assigned' ? '6 6' : null };
    if (line) {
      line.setLatLngs(pts);
      line.setStyle(style);
    } else {
      const pl = L.polyline(pts, { ...style, pane: 'routes', interactive: false, className: `route-line route-${r.id}` });
      pl.addTo(routeLayer);
      routes.set(r.id, pl);
    }
  }

  // ---- H3 layer ----
  function setHeat(cells) {
    const seen = new Set();
    for (const c of cells ?? []) {
      if (!Array.isArray(c.boundary) || c.boundary.length < 3) continue;
      seen.add(c.cell);
      const st = heatStyle(c.open_requests, c.available_technicians);
      const key = `${st.color}/${st.opacity}/${c.open_requests}/${c.available_technicians}`;
      const held = heatCells.get(c.cell);
      if (held && held.key === key) continue;
      const style = { color: st.color, weight: 1, opacity: 0.6, fillColor: st.color, fillOpacity: st.opacity };
      // A function returning a node: a string tooltip would be parsed as HTML.
      const text = `${c.open_requests} open request${c.open_requests === 1 ? '' : 's'} · ${c.available_technicians} available technician${c.available_technicians === 1 ? '' : 's'}`;
      const tip = () => h('span', null, text);
      let polygon = held?.polygon;
      if (polygon) {
        polygon.setStyle(style);
        polygon.setTooltipContent(tip);
        held.key = key;
      } else {
        polygon = L.polygon(c.boundary, { ...style, pane: 'heat', className: 'heat' });
        polygon.bindTooltip(tip, { className: 'tip', sticky: true });
        polygon.addTo(heatLayer);
        heatCells.set(c.cell, { polygon, key });
      }
      const path = polygon.getElement();
      if (path) {
        // For tests and the curious: what the colour says.
        path.setAttribute('class', `heat heat-${st.kind} leaflet-interactive`);
        path.dataset.cell = c.cell;
        path.dataset.open = String(c.open_requests);
        path.dataset.available = String(c.available_technicians);
      }
    }
    for (const [cell, held] of heatCells) {
      if (!seen.has(cell)) {
        heatLayer.removeLayer(held.polygon);
        heatCells.delete(cell);
      }
    }
  }

  // ---- base map ----
  function setTiles(url, attribution) {
    // Tiles from http(s) or relative URLs only; Leaflet puts the attribution
    // in as HTML, so it goes in escaped (as text).
    if (url && safeUrl(url) !== url.trim()) url = '';
    if (url) {
      L.tileLayer(url, { maxZoom: 19, attribution: escapeHtml(attribution || ''), crossOrigin: true }).addTo(map);
      el.classList.remove('no-tiles');
      if (graticule) {
        map.removeLayer(graticule);
        graticule = null;
      }
      return;
    }
    el.classList.add('no-tiles');
    graticule = L.layerGroup().addTo(map);
    const draw = () => {
      graticule.clearLayers();
      const b = map.getBounds();
      const z = map.getZoom();
      const step = [30, 30, 20, 10, 5, 2, 1, 0.5, 0.25, 0.1, 0.05, 0.02, 0.01, 0.005, 0.0025, 0.001][Math.min(Math.max(z - 1, 0), 15)];
      const south = Math.max(b.getSouth(), -85);
      const north = Math.min(b.getNorth(), 85);
      const opts = { className: 'graticule', interactive: false, weight: 1, color: '#cfd8e3', pane: 'heat' };
      for (let lat = Math.ceil(south / step) * step; lat <= north; lat += step) {
        graticule.addLayer(L.polyline([[lat, b.getWest()], [lat, b.getEast()]], opts));
      }
      for (let lng = Math.ceil(b.getWest() / step) * step; lng <= b.getEast(); lng += step) {
        graticule.addLayer(L.polyline([[south, lng], [north, lng]], opts));
      }
    };
    map.on('moveend zoomend', draw);
    draw();
  }

  // ---- view ----
  function fitAll(byUser = false) {
    const pts = [];
    for (const { marker } of reqMarkers.values()) pts.push(marker.getLatLng());
    for (const { marker } of techMarkers.values()) pts.push(marker.getLatLng());
    if (!pts.length) return false;
    if (byUser) userMoved = true;
    map.fitBounds(L.latLngBounds(pts), { padding: [48, 48], maxZoom: 14, animate: byUser });
    return true;
  }

  /** Fits to the data once, unless the dispatcher has a view of their own. */
  function fitOnce() {
    if (userMoved) return true;
    return fitAll(false);
  }

  /** Pans to a point the view does not show (a request picked from a list). */
  function reveal(lat, lng) {
    if (typeof lat !== 'number' || typeof lng !== 'number') return;
    if (!map.getBounds().pad(-0.05).contains([lat, lng])) map.panTo([lat, lng]);
  }

  /** H3 resolution for the layer: city cells (8) close up, wider ones (7) from afar. */
  const heatResolution = () => (map.getZoom() >= 12 ? 8 : 7);
  let onResolution = () => {};
  let lastRes = heatResolution();
  map.on('zoomend', () => {
    const res = heatResolution();
    if (res !== lastRes) {
      lastRes = res;
      onResolution(res);
    }
  });

  function focus(lat, lng) {
    userMoved = true;
    map.setView([lat, lng], Math.max(map.getZoom(), 14));
  }

  /** Re-evaluates what depends on the clock (a deadline passing) and on selection. */
  function refreshIcons() {
    for (const [id] of reqMarkers) {
      const r = store.requests.get(id);
      if (r) updateRequest(r);
    }
  }

  return {
    map,
    updateRequest,
    updateTechnician,
    setHeat,
    setTiles,
    fitAll,
    fitOnce,
    focus,
    reveal,
    heatResolution,
    onHeatResolution: (fn) => {
      onResolution = fn;
    },
    refreshIcons,
    invalidate: () => map.invalidateSize(),
  };
}

function readView() {
  try {
    const v = JSON.parse(localStorage.getItem(VIEW_KEY) || 'null');
    if (v && Number.isFinite(v.lat) && Number.isFinite(v.lng) && Number.isFinite(v.zoom)) return v;
  } catch {
    /* ignore */
  }
  return null;
}

/** The legend under the map (collapsible on phones). */
export function renderLegend(el) {
  const item = (cls, label) => h('span', { class: 'legend-item' }, h('span', { class: cls }), label);
  const sw = (color, opacity, label) =>
    h('span', { class: 'legend-item' }, h('span', { class: 'swatch', style: `background:${color};opacity:${Math.max(opacity * 2, 0.5)}` }), label);
  const body = h('div', { class: 'legend-body' },
    h('h4', null, 'Requests'),
    h('div', { class: 'legend-row' },
      item('mk-req st-searching', 'searching'),
      item('mk-req st-scheduled', 'scheduled'),
      item('mk-req st-assigned', 'assigned'),
      item('mk-req st-en_route', 'en route'),
      item('mk-req st-on_site', 'on site'),
      item('mk-req st-unfulfilled', 'unfulfilled'),
      item('mk-req risky', 'at risk'),
    ),
    h('h4', null, 'Technicians'),
    h('div', { class: 'legend-row' },
      item('mk-tech duty-available', 'available'),
      item('mk-tech duty-busy', 'busy'),
      item('mk-tech duty-offline', 'offline'),
    ),
    h('h4', null, 'H3 cells: demand vs supply'),
    h('div', { class: 'legend-row' },
      sw('#dc2626', 0.35, 'short'),
      sw('#f59e0b', 0.28, 'balanced'),
      sw('#16a34a', 0.2, 'spare'),
    ),
  );
  const toggle = h('button', { type: 'button', class: 'legend-toggle', 'aria-expanded': 'false', onclick: () => {
    const open = el.classList.toggle('open');
    toggle.setAttribute('aria-expanded', String(open));
  } }, 'Legend');
  replace(el, toggle, body);
}

