// The technicians tab: search, onboard, certify and revoke skills, suspend and
// lift a suspension. The list is the store (live); a search also asks the
// server, so technicians beyond the first page are found too.
import * as api from './api.js';
import { store, on, putTechnician, setSkills } from './store.js';
import { h, replace, reconcile, toast, fieldError, debounce } from './dom.js';
import { ago, clock, ms } from './format.js';

export function createTechnicians(panel, { onFocus }) {
  const q = h('input', { type: 'search', name: 'q', placeholder: 'Search name or phone', 'aria-label': 'Search technicians', dataset: { testid: 'tech-search' } });
  const status = h('select', { name: 'status', 'aria-label': 'Duty status', dataset: { testid: 'tech-filter-status' } },
    h('option', { value: '' }, 'Any status'),
    h('option', { value: 'available' }, 'Available'),
    h('option', { value: 'busy' }, 'Busy'),
    h('option', { value: 'offline' }, 'Offline'));
  const skill = h('select', { name: 'skill', 'aria-label': 'Skill', dataset: { testid: 'tech-filter-skill' } });
  const list = h('ul', { class: 'tech-list', dataset: { testid: 'tech-list' } });
  const note = h('p', { class: 'list-note', dataset: { testid: 'tech-count' } });

  const onboard = buildOnboard();
  const skills = buildSkills();

  replace(panel,
    h('div', { class: 'filters' }, h('div', { class: 'search' }, q), status, skill),
    onboard.el,
    skills.el,
    note,
    list);

  const search = debounce(async () => {
    // The store holds the first 500; the server finds the rest.
    const params = { limit: 100, q: q.value.trim(), status: status.value, skill: skill.value };
    if (!params.q && !params.status && !params.skill) return;
    try {
      const res = await api.get(api.withQuery('v1/technicians', params));
      for (const t of res.items ?? []) putTechnician(t);
    } catch (err) {
      if (err.status !== 401) toast(`Search failed: ${err.message}`, 'error');
    }
  }, 300);
  for (const el of [q, status, skill]) {
    el.addEventListener('input', () => {
      render();
      search();
    });
  }

  function matches(t, now) {
    const text = q.value.trim().toLowerCase();
    if (text && !t.name.toLowerCase().includes(text) && !t.phone.includes(text)) return false;
    if (status.value && t.duty_status !== status.value) return false;
    if (skill.value && !(t.certifications ?? []).some((c) => c.skill === skill.value && (ms(c.expires_at) ?? 0) > now)) return false;
    return true;
  }

  function render() {
    const now = Date.now();
    const all = [...store.technicians.values()];
    const items = all.filter((t) => matches(t, now)).sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    const onDuty = all.filter((t) => t.duty_status !== 'offline').length;
    note.textContent = items.length === all.length
      ? `${all.length} technician${all.length === 1 ? '' : 's'} · ${onDuty} on duty`
      : `${items.length} of ${all.length} technicians`;
    reconcile(list, items, (t) => t.id, version, (t) => row(t));
    if (!items.length) list.append(h('li', { class: 'queue-empty' }, all.length ? 'No technician matches.' : 'No technicians yet: onboard the first one above.'));
  }

  function version(t) {
    return JSON.stringify([t.name, t.phone, t.duty_status, t.on_duty_from, t.suspended, t.active_jobs, t.capacity, t.travel_mode,
      t.certifications, typeof t.lat === 'number', Math.floor((ms(t.position_at) ?? 0) / 60_000), Math.floor(Date.now() / 60_000)]);
  }

  function row(t) {
    const now = Date.now();
    const certs = [...(t.certifications ?? [])].sort((a, b) => a.skill.localeCompare(b.skill));
    return h('li', { class: 'tech', dataset: { testid: `tech-row-${t.id}`, status: t.duty_status } },
      h('div', { class: 'tech-top' },
        h('span', { class: 'tech-name' }, t.name),
        h('span', { class: 'row', style: 'gap:4px' },
          t.suspended ? h('span', { class: 'badge suspended', dataset: { testid: 'tech-suspended' } }, 'Suspended') : null,
          h('span', { class: `badge duty-${t.duty_status}`, dataset: { testid: 'tech-status' } }, t.duty_status))),
      h('div', { class: 'tech-sub' },
        `${t.phone} · ${t.travel_mode} · ${t.active_jobs}/${t.capacity} job${t.capacity === 1 ? '' : 's'}`,
        t.rating_count ? ` · ★ ${Number(t.rating).toFixed(1)}` : '',
        (ms(t.on_duty_from) ?? 0) > now ? ` · on duty from ${clock(t.on_duty_from)}` : '',
        t.position_at ? ` · seen ${ago(t.position_at, now)}` : ' · no position yet'),
      h('div', { class: 'chips', dataset: { testid: 'tech-certs' } },
        certs.length ? certs.map((c) => {
          const expired = (ms(c.expires_at) ?? 0) <= now;
          return h('span', { class: `chip${expired ? ' expired' : ''}`, title: `${expired ? 'Expired' : 'Valid until'} ${clock(c.expires_at)}`, dataset: { testid: `cert-${t.id}-${c.skill}` } },
            c.skill,
            h('button', {
              type: 'button', 'aria-label': `Revoke ${c.skill}`, title: `Revoke ${c.skill}`,
              dataset: { testid: `revoke-${t.id}-${c.skill}` }, onclick: () => revoke(t, c.skill),
            }, '×'));
        }) : h('span', { class: 'muted small' }, 'No certifications')),
      h('div', { class: 'tech-actions' },
        h('button', { type: 'button', class: 'btn btn-small', dataset: { testid: `certify-${t.id}` }, onclick: () => openCertify(t) }, 'Certify…'),
        h('button', {
          type: 'button', class: `btn btn-small${t.suspended ? '' : ' btn-danger'}`, dataset: { testid: `suspend-${t.id}` },
          onclick: (e) => suspend(t, e.currentTarget),
        }, t.suspended ? 'Lift suspension' : 'Suspend'),
        typeof t.lat === 'number'
          ? h('button', { type: 'button', class: 'btn btn-small btn-ghost', onclick: () => onFocus(t.lat, t.lng) }, 'Show on map')
          : null,
      ));
  }

  // ---- onboarding ----
  function buildOnboard() {
    const form = h('form', { class: 'form-grid', dataset: { testid: 'onboard-form' }, novalidate: true },
      h('label', { class: 'full' }, 'Name', h('input', { name: 'name', required: true, maxlength: '100', autocomplete: 'off', dataset: { testid: 'onboard-name' } })),
      h('label', { class: 'full' }, 'Phone (E.164)', h('input', { name: 'phone', required: true, type: 'tel', placeholder: '+41791234567', dataset: { testid: 'onboard-phone' } })),
      h('label', null, 'Travel mode', h('select', { name: 'travel_mode', dataset: { testid: 'onboard-mode' } },
        h('option', { value: 'car' }, 'Car'), h('option', { value: 'bike' }, 'Bike'), h('option', { value: 'foot' }, 'On foot'))),
      h('label', null, 'Capacity', h('input', { name: 'capacity', type: 'number', min: '1', max: '10', value: '1', dataset: { testid: 'onboard-capacity' } })),
      h('div', { class: 'full row row-end' }, h('button', { type: 'submit', class: 'btn btn-primary', dataset: { testid: 'onboard-submit' } }, 'Onboard technician')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = new FormData(form);
      const body = {
        name: String(f.get('name')).trim(),
        phone: String(f.get('phone')).replace(/[\s()-]/g, ''),
        travel_mode: f.get('travel_mode'),
        capacity: Number(f.get('capacity') || 1),
      };
      if (!body.name) return fieldError(form, 'name', 'A name is needed.');
      if (!/^\+[1-9][0-9]{6,14}$/.test(body.phone)) return fieldError(form, 'phone', 'An international number such as +41791234567.');
      fieldError(form, '');
      const btn = form.querySelector('button[type=submit]');
      btn.disabled = true;
      try {
        const t = await api.post('v1/technicians', body);
        putTechnician(t);
        form.reset();
        toast(`${t.name} is onboarded. Certify a skill next.`, 'ok');
      } catch (err) {
        if (!fieldError(form, err.field, err.message)) toast(`Could not onboard: ${err.message}`, 'error');
      } finally {
        btn.disabled = false;
      }
    });
    return { el: h('details', { class: 'fold', dataset: { testid: 'onboard' } }, h('summary', null, 'Onboard a technician'), h('div', { class: 'fold-body' }, form)) };
  }

  // ---- skills catalog (needed to certify) ----
  function buildSkills() {
    const listEl = h('p', { class: 'muted small', style: 'margin:0 0 8px' });
    const form = h('form', { class: 'form-grid', novalidate: true, dataset: { testid: 'skill-form' } },
      h('label', null, 'Code', h('input', { name: 'code', placeholder: 'router_replace', required: true, dataset: { testid: 'skill-code' } })),
      h('label', null, 'Name', h('input', { name: 'name', placeholder: 'Replace a router', required: true, dataset: { testid: 'skill-name' } })),
      h('div', { class: 'full row row-end' }, h('button', { type: 'submit', class: 'btn' }, 'Add skill')));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = new FormData(form);
      try {
        await api.post('v1/skills', { code: String(f.get('code')).trim(), name: String(f.get('name')).trim() });
        fieldError(form, '');
        form.reset();
        setSkills((await api.get('v1/skills')).items ?? []);
        toast('Skill added.', 'ok');
      } catch (err) {
        if (!fieldError(form, err.field, err.message)) toast(`Could not add the skill: ${err.message}`, 'error');
      }
    });
    const el = h('details', { class: 'fold' }, h('summary', null, 'Skills catalog'), h('div', { class: 'fold-body' }, listEl, form));
    return { el, listEl };
  }

  function paintSkills() {
    const cur = skill.value;
    replace(skill, h('option', { value: '' }, 'Any skill'), store.skills.map((s) => h('option', { value: s.code }, s.code)));
    skill.value = store.skills.some((s) => s.code === cur) ? cur : '';
    skills.listEl.textContent = store.skills.length ? store.skills.map((s) => `${s.code} (${s.name})`).join(', ') : 'No skills yet.';
  }

  // ---- certify, revoke, suspend ----
  const dialog = document.getElementById('certify-dialog');
  const dSkill = document.getElementById('certify-skill');
  const dExpires = document.getElementById('certify-expires');
  const dWho = document.getElementById('certify-who');
  const dErr = document.getElementById('certify-error');
  let certifying = null;

  function openCertify(t) {
    certifying = t.id;
    dWho.textContent = t.name;
    replace(dSkill, store.skills.map((s) => h('option', { value: s.code }, `${s.code} — ${s.name}`)));
    const d = new Date();
    d.setFullYear(d.getFullYear() + 1);
    dExpires.value = d.toISOString().slice(0, 10);
    dExpires.min = new Date(Date.now() + 86400000).toISOString().slice(0, 10);
    dErr.hidden = true;
    if (!store.skills.length) {
      dErr.textContent = 'The skills catalog is empty: add a skill first.';
      dErr.hidden = false;
    }
    dialog.showModal();
  }

  document.getElementById('certify-cancel').addEventListener('click', () => dialog.close());
  document.getElementById('certify-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!certifying || !dSkill.value || !dExpires.value) return;
    // End of the chosen day, local time.
    const until = new Date(`${dExpires.value}T23:59:59`);
    try {
      await api.put(`v1/technicians/${api.enc(certifying)}/certifications/${api.enc(dSkill.value)}`, { expires_at: until.toISOString() });
      putTechnician(await api.get(`v1/technicians/${api.enc(certifying)}`));
      dialog.close();
      toast(`Certified for ${dSkill.value}.`, 'ok');
    } catch (err) {
      dErr.textContent = err.message;
      dErr.hidden = false;
    }
  });

  async function revoke(t, code) {
    if (!window.confirm(`Revoke ${t.name}'s certification for ${code}?`)) return;
    try {
      await api.del(`v1/technicians/${api.enc(t.id)}/certifications/${api.enc(code)}`);
      putTechnician(await api.get(`v1/technicians/${api.enc(t.id)}`));
      toast(`Revoked ${code}.`, 'ok');
    } catch (err) {
      toast(`Could not revoke: ${err.message}`, 'error');
    }
  }

  async function suspend(t, btn) {
    const next = !t.suspended;
    if (next && !window.confirm(`Suspend ${t.name}? They go off duty and cannot go on duty again until the suspension is lifted.`)) return;
    btn.disabled = true;
    try {
      putTechnician(await api.put(`v1/technicians/${api.enc(t.id)}/suspension`, { suspended: next }));
      toast(next ? `${t.name} is suspended.` : `${t.name}'s suspension is lifted.`, 'ok');
    } catch (err) {
      toast(`Could not change the suspension: ${err.message}`, 'error');
      btn.disabled = false;
    }
  }

  on('skills', paintSkills);
  paintSkills();
  return { render };
}
