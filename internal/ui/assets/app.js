// Cadre dashboard: polls GET /cadre/v1/dashboard every second and renders
// it. Plain DOM code, no framework or CDN: the page ships in the binary and
// must work offline.
'use strict';

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);

// The auth token lives for the tab only (sessionStorage), as a login to a
// console should; it is sent as etcd's gateway takes it: a bare
// Authorization header.
let token = sessionStorage.getItem('cadre-token') || '';
let last = null;        // the last dashboard answer, for names in the verdict
const snapSeen = {};    // member ID -> {t0, sent0, total}: first sighting of a transfer, for its rate

async function call(method, path, body) {
  const headers = {};
  if (token) headers.Authorization = token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  // A hung request must not stall the poll loop.
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 5000);
  try {
    const r = await fetch(path, {
      method, headers, cache: 'no-store', signal: ctl.signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const data = await r.json().catch(() => ({}));
    return { status: r.status, data };
  } finally {
    clearTimeout(timer);
  }
}

// el builds an element: el('td', {class: 'num', text: '3'}, child...).
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);
  return e;
}

function bytes(n) {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
}

function duration(s) {
  if (!isFinite(s)) return '?';
  if (s < 60) return Math.ceil(s) + 's';
  if (s < 3600) return Math.floor(s / 60) + 'm' + String(Math.ceil(s % 60)).padStart(2, '0') + 's';
  return Math.floor(s / 3600) + 'h' + String(Math.floor((s % 3600) / 60)).padStart(2, '0') + 'm';
}

const nameOf = (id) => {
  const m = last && last.members.find((x) => x.id === id);
  return m && m.name ? m.name : id;
};

// snapshotCell shows a transfer's progress; the rate (and so the ETA) is
// measured from this page's first sighting of the transfer, since the
// server reports only bytes sent and total.
function snapshotCell(id, s) {
  if (!s) { delete snapSeen[id]; return el('td', { text: '—', class: 'note' }); }
  const now = performance.now();
  let seen = snapSeen[id];
  if (!seen || s.bytesSent < seen.sent0 || s.bytesTotal !== seen.total) {
    seen = snapSeen[id] = { t0: now, sent0: s.bytesSent, total: s.bytesTotal };
  }
  const td = el('td', { class: 'snapshot' });
  if (s.bytesTotal > 0) {
    td.append(el('progress', { max: String(s.bytesTotal), value: String(s.bytesSent) }), ' ');
  }
  let text = bytes(s.bytesSent) + (s.bytesTotal > 0 ? ' / ' + bytes(s.bytesTotal) : ' sent');
  const rate = (s.bytesSent - seen.sent0) / ((now - seen.t0) / 1000);
  if (rate > 0) {
    text += ', ' + bytes(Math.round(rate)) + '/s';
    // An ETA needs the total, which the sender may not know yet.
    if (s.bytesTotal > 0) text += ', ETA ' + duration((s.bytesTotal - s.bytesSent) / rate);
  } else {
    text += ', measuring rate…';
  }
  td.append(el('span', { text }));
  return td;
}

const healthClass = { healthy: 'ok', connecting: 'warn', unreachable: 'bad' };

function memberRow(m) {
  const role = el('td', { class: 'role' });
  if (m.isLeader) role.append(el('span', { class: 'badge leader', text: 'leader' }));
  role.append(el('span', { class: 'badge ' + m.role, text: m.role }));
  if (!m.started) role.append(el('span', { class: 'badge unstarted', text: 'unstarted' }));
  const health = m.health
    ? el('td', { class: 'health ' + (healthClass[m.health] || ''), text: '● ' + m.health })
    : el('td', { class: 'health note', text: 'unknown' });
  const contact = el('td', { text: m.activity || '—' });
  if (m.connectedSince) contact.title = 'connected since ' + m.connectedSince;
  return el('tr', { 'data-id': m.id, 'data-role': m.role, 'data-started': String(m.started) },
    el('td', { class: 'name', text: m.name || '(unstarted)' }),
    el('td', { class: 'id', text: m.id }),
    role, health, contact,
    el('td', { class: 'num', text: String(m.match) }),
    el('td', { class: 'num', text: String(m.lag) }),
    snapshotCell(m.id, m.snapshot),
    el('td', { class: 'id', text: m.peerURLs.join(', ') }));
}

function render(d) {
  last = d;
  $('cluster').textContent = d.clusterID;
  $('leader').textContent = d.leader ? (d.leaderName || d.leader) : 'none';
  $('leader').className = d.leader ? '' : 'bad';
  $('term').textContent = d.term;
  $('commit').textContent = d.commit;
  const me = d.members.find((m) => m.id === d.member);
  const myRole = d.member === d.leader ? 'leader' : me && me.role === 'learner' ? 'learner' : 'follower';
  $('served').textContent = (d.memberName || d.member) + ' (' + myRole + ')';

  // Voters first, then learners, leader on top; unstarted ones last.
  const order = (m) => (m.isLeader ? 0 : 1) + (m.role === 'learner' ? 2 : 0) + (m.started ? 0 : 4);
  const rows = [...d.members].sort((a, b) => order(a) - order(b) || a.id.localeCompare(b.id)).map(memberRow);
  $('members').tBodies[0].replaceChildren(...rows);
  $('health-note').textContent = d.healthError ? 'Leader\'s view unavailable: ' + d.healthError : '';
  $('removed').textContent = d.removed.length ? 'Removed (IDs never reusable): ' + d.removed.join(', ') : '';

  $('alarms').hidden = d.alarms.length === 0;
  $('alarm-list').replaceChildren(...d.alarms.map((a) =>
    el('li', { text: a.alarm + ' on ' + (a.memberName || a.member) })));

  const used = d.db.quota > 0 ? d.db.size / d.db.quota : 0;
  $('db-meter').value = Math.min(used, 1);
  $('db-text').textContent = bytes(d.db.size) + ' of ' + bytes(d.db.quota) + ' quota (' +
    (used * 100).toFixed(1) + '%), ' + bytes(d.db.sizeInUse) + ' in use';

  const voters = d.members.filter((m) => m.role === 'voter').length;
  const ft = d.failureTolerance;
  $('quorum').textContent = voters + ' voters, quorum ' + d.quorum + ', ' +
    (ft == null ? 'failure tolerance unknown' : 'tolerates ' + ft + ' more failure' + (ft === 1 ? '' : 's'));
  $('quorum').className = ft == null ? 'note' : ft > 0 ? 'ok' : ft === 0 ? 'warn' : 'bad';

  $('dr-ids').replaceChildren(...d.members.map((m) =>
    el('option', { value: m.id, label: (m.name || 'unstarted') + ' (' + m.role + ')' })));
}

function showLogin(message) {
  $('main').hidden = true;
  $('login').hidden = false;
  $('logout').hidden = true;
  $('login-error').textContent = message || '';
}

async function poll() {
  try {
    const { status, data } = await call('GET', '/cadre/v1/dashboard');
    if (status === 401) {
      // Auth is on: no data without a token from this cluster.
      if (token) { token = ''; sessionStorage.removeItem('cadre-token'); }
      showLogin($('login-error').textContent);
      $('live').textContent = 'login required';
    } else if (status !== 200) {
      throw new Error(data.error || 'HTTP ' + status);
    } else {
      render(data);
      $('main').hidden = false;
      $('login').hidden = true;
      $('logout').hidden = !token;
      $('live').textContent = 'live · updated ' + new Date().toLocaleTimeString();
      $('live').className = '';
    }
  } catch (e) {
    // Keep showing the last answer, marked stale, and keep trying.
    $('live').textContent = 'not updating: ' + (e.name === 'AbortError' ? 'timed out' : e.message) + ' (retrying)';
    $('live').className = 'stale';
  }
  setTimeout(poll, POLL_MS);
}

// The audit trail changes rarely: read it every few seconds, not every poll.
const HISTORY_MS = 3000;
const HISTORY_ROWS = 20;

function configText(c) {
  const l = (c.learners || []).length;
  return (c.voters || []).length + (l ? ' + ' + l + 'L' : '');
}

async function pollHistory() {
  try {
    const { status, data } = await call('GET', '/cadre/v1/members/history');
    if (status === 200) {
      const body = $('history').tBodies[0];
      body.replaceChildren();
      for (const r of (data.records || []).slice(-HISTORY_ROWS).reverse()) {
        const refused = !r.outcome.startsWith('applied');
        body.append(el('tr', refused ? { class: 'refused' } : {},
          el('td', { text: new Date(r.at).toLocaleString() }),
          el('td', { class: 'num', text: r.index ? String(r.index) : '-' }),
          el('td', { text: r.by || '' }),
          el('td', { text: r.action }),
          el('td', { class: 'id', text: (r.member || '').replace(/^0+/, '') + (r.name ? ' (' + r.name + ')' : '') }),
          el('td', { text: configText(r.before) + ' → ' + configText(r.after) }),
          el('td', { text: r.outcome })));
      }
    }
  } catch (e) {
    // The member poll shows connectivity; the trail just waits for the next try.
  }
  setTimeout(pollHistory, HISTORY_MS);
}

$('login-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const { status, data } = await call('POST', '/ui/authenticate',
    { name: $('login-user').value, password: $('login-password').value });
  if (status !== 200 || !data.token) {
    $('login-error').textContent = data.error || 'login failed (HTTP ' + status + ')';
    return;
  }
  token = data.token;
  sessionStorage.setItem('cadre-token', token);
  $('login-password').value = '';
  $('login-error').textContent = '';
  $('login').hidden = true;
});

$('logout').addEventListener('click', () => {
  token = '';
  sessionStorage.removeItem('cadre-token');
  showLogin('');
});

// Only the fields the chosen action uses are shown (and sent).
function dryRunFields() {
  const a = $('dr-action').value;
  $('dr-id-label').hidden = a === 'add';
  $('dr-urls-label').hidden = a !== 'add';
  $('dr-learner-label').hidden = a !== 'add';
}
$('dr-action').addEventListener('change', dryRunFields);
dryRunFields();

function renderVerdict(v, status) {
  const box = $('verdict');
  box.hidden = false;
  if (status !== 200) {
    box.className = 'refused';
    box.replaceChildren(el('h3', { class: 'bad', text: 'Could not judge: ' + (v.error || 'HTTP ' + status) }));
    return;
  }
  const names = (ids) => (ids.length ? ids.map(nameOf).join(', ') : 'none');
  box.className = v.accepted ? 'accepted' : 'refused';
  box.replaceChildren(...[
    el('h3', v.accepted
      ? { class: 'ok', text: 'Accepted: the change would be made (dry run, nothing changed)' }
      : { class: 'bad', text: 'Refused: ' + v.error + ' (dry run, nothing changed)' }),
    v.fix ? el('p', { text: 'Fix: ' + v.fix }) : null,
    v.detail ? el('p', { class: 'note', text: v.detail }) : null,
    v.warnings && v.warnings.length ? el('ul', {}, ...v.warnings.map((w) => el('li', { class: 'warn', text: w }))) : null,
    el('p', { text: 'Voters: ' + names(v.votersBefore) + ' → ' + names(v.votersAfter) }),
    el('p', { text: 'Learners: ' + names(v.learnersBefore) + ' → ' + names(v.learnersAfter) }),
    el('p', { text: 'Quorum ' + v.quorumBefore + ' → ' + v.quorumAfter +
      '; failure tolerance ' + v.failureToleranceBefore + ' → ' + v.failureToleranceAfter }),
  ].filter(Boolean)); // replaceChildren would print a skipped part as "null"
}

$('dryrun-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const action = $('dr-action').value;
  const body = { action };
  if (action === 'add') {
    body.peerURLs = $('dr-urls').value.split(',').map((s) => s.trim()).filter(Boolean);
    body.isLearner = $('dr-learner').checked;
  } else {
    body.id = $('dr-id').value.trim();
  }
  $('dr-submit').disabled = true;
  try {
    const { status, data } = await call('POST', '/cadre/v1/members/dry-run', body);
    renderVerdict(data, status);
  } catch (e) {
    renderVerdict({ error: e.message }, 0);
  } finally {
    $('dr-submit').disabled = false;
  }
});

poll();
pollHistory();
