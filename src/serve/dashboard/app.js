// The forseti dashboard: renders the agent's status document (GET v1/status), kept live by Server-Sent
// Events (v1/events) with polling as the fallback. Read-only; every value reaches the page as text, never HTML.

const POLL_MS = 5000;
const EVENT_LIMIT = 30;
const STANDALONE = 'standalone';
/** The lifecycle's order, for the summary; phases this page does not know go last. */
const PHASE_ORDER = ['Pending', 'Enrolling', 'Ready', 'Provisioning', 'Wiping', 'Converged', 'Failed', 'Off'];
const STAGES = ['validate', 'secrets', 'images', 'render', 'activate'];

let view = null;
let polling = null;
/** Phase changes seen by this page, shown when the agent reports no events of its own. */
const observed = [];

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'style') node.style.cssText = value;
    else node.setAttribute(key, String(value));
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  return node;
}

const short = (rev) => (typeof rev === 'string' && rev ? rev.slice(0, 7) : '–');
const timeOf = (at) => (typeof at === 'number' ? at : Date.parse(at));

function age(at) {
  const t = timeOf(at);
  if (!Number.isFinite(t)) return '';
  const s = Math.max(0, Math.round((Date.now() - t) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d`;
}

function clock(at) {
  const d = new Date(timeOf(at));
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour12: false });
}

/** `340 ms`, `1.2 s`, `2 min 5 s`, as `forseti status` prints them. */
function duration(ms) {
  if (typeof ms !== 'number' || !Number.isFinite(ms)) return '–';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

function actionText(a) {
  const took = a.outcome === 'running' ? `running ${age(a.started)}` : `${a.outcome} in ${duration(a.durationMs)}`;
  return `${a.action} ${took}`;
}

function phaseVar(phase) {
  return /^[A-Za-z]+$/.test(phase) ? `--phase: var(--${phase}, var(--other))` : '';
}

/** Enclosures by name with their blades in bay order, then everything else under "standalone" by name. */
function groups(hosts) {
  const byEnclosure = new Map();
  const standalone = [];
  for (const [name, host] of Object.entries(hosts)) {
    if (host.enclosure) {
      const list = byEnclosure.get(host.enclosure.name) ?? [];
      list.push([name, host]);
      byEnclosure.set(host.enclosure.name, list);
    } else standalone.push([name, host]);
  }
  const out = [...byEnclosure.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, list]) => ({ name, kind: 'enclosure', hosts: list.sort(([, a], [, b]) => a.enclosure.bay - b.enclosure.bay) }));
  if (standalone.length > 0) out.push({ name: STANDALONE, kind: 'standalone', hosts: standalone.sort(([a], [b]) => a.localeCompare(b)) });
  return out;
}

function tile(name, host) {
  const badges = el('div', { class: 'badges' });
  if (host.sync) badges.append(el('span', { class: `badge ${host.sync}`, 'data-field': 'sync' }, host.sync));
  if (host.health) badges.append(el('span', { class: `badge ${host.health}`, 'data-field': 'health' }, host.health));
  if (host.drift && host.drift.length > 0) badges.append(el('span', { class: 'badge drift', 'data-field': 'drift', title: host.drift.join('\n') }, `drift ${host.drift.length}`));
  for (const [key, value] of Object.entries(host.labels ?? {}).slice(0, 3)) badges.append(el('span', { class: 'badge label' }, `${key}=${value}`));
  const runs = host.appliedRole && host.appliedRole !== host.role ? ` (runs ${host.appliedRole})` : '';
  const actions = Array.isArray(host.actions) ? host.actions : [];
  const lastAction = actions.at(-1);
  const actionLine = lastAction
    ? el(
        'div',
        { class: `action ${lastAction.outcome}`, 'data-field': 'action', 'data-outcome': lastAction.outcome, title: actions.slice().reverse().map((a) => `${clock(a.started)} ${actionText(a)}${a.message ? `: ${a.message}` : ''}`).join('\n') },
        actionText(lastAction),
      )
    : null;
  // The role's converge signals: the last step reached (where it is), every step with its time in the tooltip.
  const steps = Array.isArray(host.convergeSteps) ? host.convergeSteps : [];
  const stepText = (s) => `${s.signal}: ${s.name}${s.result ? ` ${s.result}` : ''}${s.detail ? ` (${s.detail})` : ''}`;
  const lastStep = steps.at(-1);
  const convergeLine = lastStep
    ? el('div', { class: `converge ${lastStep.result === 'FAIL' ? 'failed' : ''}`, 'data-field': 'converge', title: steps.map((s) => `${clock(s.at)} ${stepText(s)}`).join('\n') }, stepText(lastStep))
    : null;
  const revision = host.appliedRevision ? `applied ${short(host.appliedRevision)}` : 'never applied';
  return el(
    'article',
    { class: 'tile', style: phaseVar(host.phase), 'data-host': name, 'data-phase': host.phase, title: `${name}: ${revision}${host.attemptRevision ? `, attempt ${short(host.attemptRevision)}` : ''}` },
    el('div', { class: 'head' }, host.enclosure ? el('span', { class: 'bay' }, `#${host.enclosure.bay}`) : null, el('span', { class: 'name' }, name), el('span', { class: 'since', 'data-since': host.since ?? '' }, host.since !== undefined ? age(host.since) : '')),
    el('div', { class: 'role', 'data-field': 'role' }, `${host.role || '–'}${runs}`),
    el('div', {}, el('span', { class: 'phase', 'data-field': 'phase' }, host.phase), host.step ? el('span', { class: 'step', 'data-field': 'step' }, host.step) : null),
    badges,
    convergeLine,
    actionLine,
    host.lastError ? el('div', { class: 'error', 'data-field': 'error' }, `${host.lastError.step ? `${host.lastError.step}: ` : ''}${host.lastError.message}`) : null,
  );
}

function renderHeader(v) {
  for (const [id, value] of [['site-sync', v.site?.sync], ['site-health', v.site?.health]]) {
    $(id).textContent = value ?? '–';
    $(id).className = `badge ${value ?? ''}`;
  }
  const applied = v.site?.revision ?? v.revision;
  $('applied').textContent = short(applied);
  $('applied').title = applied ?? '';
  $('generation').textContent = v.generation ?? '–';
  const rejected = v.site?.rejected;
  $('rejected').hidden = !rejected;
  if (rejected) {
    $('rejected-revision').textContent = short(rejected.revision);
    $('rejected-revision').title = rejected.revision;
    const errors = rejected.errors ?? [];
    $('rejected-errors').replaceChildren(...errors.slice(0, 8).map((e) => el('li', {}, e)), ...(errors.length > 8 ? [el('li', {}, `… and ${errors.length - 8} more`)] : []));
  }
}

function renderSummary(hosts) {
  const counts = new Map();
  for (const host of Object.values(hosts)) counts.set(host.phase, (counts.get(host.phase) ?? 0) + 1);
  const rank = (phase) => (PHASE_ORDER.includes(phase) ? PHASE_ORDER.indexOf(phase) : PHASE_ORDER.length);
  $('summary').replaceChildren(...[...counts.entries()].sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b)).map(([phase, n]) => el('span', { class: 'count', style: `background: var(--${/^[A-Za-z]+$/.test(phase) ? phase : 'other'}, var(--other))`, 'data-phase': phase }, `${phase} ${n}`)));
}

function renderGroups(hosts) {
  const list = groups(hosts);
  if (list.length === 0) {
    $('groups').replaceChildren(el('p', { class: 'empty' }, 'no hosts declared'));
    return;
  }
  $('groups').replaceChildren(
    ...list.map((g) =>
      el(
        'section',
        { class: 'group', 'data-group': g.name, 'data-kind': g.kind },
        el('h2', {}, g.name, el('small', {}, `${g.kind === 'enclosure' ? 'enclosure · ' : ''}${g.hosts.length} host${g.hosts.length === 1 ? '' : 's'}`)),
        el('div', { class: 'tiles' }, ...g.hosts.map(([name, host]) => tile(name, host))),
      ),
    ),
  );
}

/** The last commit applies, newest first: revision, result, total time, each stage, hosts acted on. */
function renderReconciles(v) {
  const list = Array.isArray(v.site?.reconciles) ? v.site.reconciles.slice().reverse() : [];
  if (list.length === 0) {
    $('reconciles').replaceChildren(el('li', { class: 'empty' }, 'none yet'));
    return;
  }
  $('reconciles').replaceChildren(
    ...list.map((r) => {
      const stages = STAGES.filter((s) => typeof r.stages?.[s] === 'number').map((s) => `${s} ${duration(r.stages[s])}`);
      const acted = r.result === 'rejected' ? `${r.problems ?? 0} problem${r.problems === 1 ? '' : 's'}` : `${r.hostsActedOn ?? 0} host${r.hostsActedOn === 1 ? '' : 's'} acted on`;
      return el(
        'li',
        { 'data-revision': r.revision, 'data-result': r.result },
        el('div', {}, el('code', { title: r.revision }, short(r.revision)), el('span', { class: `result ${r.result}` }, r.result), el('span', { class: 'took' }, r.result === 'running' ? 'running' : duration(r.durationMs)), el('time', { datetime: r.started }, clock(r.started))),
        el('div', { class: 'stages' }, [...stages, acted].join(' · ')),
      );
    }),
  );
}

function eventsOf(v) {
  const all = [...(v.events ?? [])];
  for (const [name, host] of Object.entries(v.hosts)) for (const e of host.events ?? []) all.push({ ...e, host: e.host ?? name });
  return all.length > 0 ? all : observed;
}

function renderEvents(v) {
  const list = eventsOf(v)
    .slice()
    .sort((a, b) => timeOf(b.at) - timeOf(a.at))
    .slice(0, EVENT_LIMIT);
  if (list.length === 0) {
    $('events').replaceChildren(el('li', { class: 'empty' }, 'none yet'));
    return;
  }
  $('events').replaceChildren(
    ...list.map((e) => el('li', { 'data-kind': e.kind }, el('time', { datetime: new Date(timeOf(e.at)).toISOString() }, clock(e.at)), el('span', {}, e.host ? el('span', { class: 'host' }, e.host) : null, e.message || e.kind))),
  );
}

function observe(previous, next) {
  if (!previous) return;
  for (const [name, host] of Object.entries(next.hosts)) {
    const before = previous.hosts[name];
    if (before && (before.phase !== host.phase || before.step !== host.step)) {
      const to = host.step ? `${host.phase} (${host.step})` : host.phase;
      observed.push({ at: Date.now(), host: name, kind: 'phase', message: `${before.phase} → ${to}` });
    }
  }
  observed.splice(0, Math.max(0, observed.length - EVENT_LIMIT));
}

function update(next) {
  if (!next || typeof next !== 'object' || typeof next.hosts !== 'object') return;
  observe(view, next);
  view = next;
  renderHeader(next);
  renderSummary(next.hosts);
  renderGroups(next.hosts);
  renderReconciles(next);
  renderEvents(next);
  document.body.dataset.revision = next.site?.revision ?? next.revision ?? '';
}

function setMode(mode) {
  const conn = $('conn');
  conn.dataset.mode = mode;
  conn.textContent = { live: 'live', polling: `polling every ${POLL_MS / 1000}s`, offline: 'agent unreachable', connecting: 'connecting' }[mode] ?? mode;
}

async function pollOnce() {
  try {
    const res = await fetch('v1/status', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    update(await res.json());
    setMode('polling');
  } catch {
    setMode('offline');
  }
}

function startPolling() {
  if (polling) return;
  void pollOnce();
  polling = setInterval(pollOnce, POLL_MS);
}

function stopPolling() {
  if (polling) clearInterval(polling);
  polling = null;
}

function connect() {
  if (!('EventSource' in window)) return startPolling();
  const source = new EventSource('v1/events');
  source.addEventListener('status', (e) => {
    stopPolling();
    setMode('live');
    try {
      update(JSON.parse(e.data));
    } catch {
      // A torn or foreign message: the next one replaces it anyway.
    }
  });
  // EventSource reconnects by itself (retry: 2000); poll meanwhile, and for good if the agent has no stream.
  source.addEventListener('error', () => startPolling());
}

// Ages ("3m") move on without new data.
setInterval(() => {
  for (const span of document.querySelectorAll('[data-since]')) if (span.dataset.since) span.textContent = age(Number(span.dataset.since) || span.dataset.since);
}, 10_000);

connect();
