// signet web UI: token management on top of the issuer's JSON API.
//
// No framework and nothing from outside the issuer. The session lives in an
// HttpOnly cookie the page cannot read; the CSRF token is kept only in this
// script's memory (re-fetched from /ui/api/session after a reload) and sent
// as X-CSRF-Token on every change. A token value is held in memory only
// while it is shown, once; nothing is ever written to browser storage.
// Every piece of server data reaches the page through textContent, never
// as HTML.
'use strict';

(function () {
  const DAY = 86400000;
  const WARN_DAYS = 7;

  const state = {
    me: null, // {user, email, role, org, csrf_token, expires_at}
    cfg: null, // GET /ui/api/config
    tokens: [],
    secret: null, // {token, name, token_id, expires_at} while shown
    pickedScopes: new Set(),
    customScopes: [],
  };

  const $ = (id) => document.getElementById(id);

  // el builds an element: el('td', {class: 'x', dataset: {label: 'Name'}}, child, 'text').
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'dataset') Object.assign(node.dataset, v);
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // cell builds a table cell labelled for the phone layout, its content in
  // one wrapper so that the label and the content are two grid items.
  function cell(label, attrs, ...children) {
    return el('td', { ...(attrs || {}), dataset: { label } }, el('div', { class: 'cell' }, ...children));
  }

  // ---- messages -------------------------------------------------------

  function say(message) {
    $('alert').hidden = true;
    $('status').textContent = message;
  }

  function fail(message) {
    $('status').textContent = '';
    const a = $('alert');
    a.textContent = message;
    a.hidden = false;
  }

  function clearMessages() {
    $('status').textContent = '';
    $('alert').hidden = true;
    $('alert').textContent = '';
  }

  function formError(id, message) {
    const p = $(id);
    p.textContent = message || '';
    p.hidden = !message;
  }

  // ---- API ------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (method !== 'GET' && state.me) headers['X-CSRF-Token'] = state.me.csrf_token;
    let resp;
    try {
      resp = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
        redirect: 'error',
      });
    } catch (e) {
      throw new ApiError(0, 'network', 'The issuer cannot be reached. Check your connection and try again.');
    }
    if (resp.status === 204) return null;
    let data = null;
    try {
      data = await resp.json();
    } catch (e) {
      data = null;
    }
    if (!resp.ok) {
      const message = (data && data.message) || `The issuer answered ${resp.status}.`;
      const err = new ApiError(resp.status, (data && data.error) || 'error', message);
      if (resp.status === 401 && state.me && !path.startsWith('/ui/api/login')) {
        signedOut('Your session has ended. Sign in again.');
      }
      throw err;
    }
    return data;
  }

  // ---- sign-in --------------------------------------------------------

  async function boot() {
    wire();
    try {
      state.me = await api('GET', '/ui/api/session');
    } catch (e) {
      state.me = null;
      if (e.status !== 401) fail(e.message);
      showSignIn();
      return;
    }
    await signedIn();
  }

  async function signedIn() {
    try {
      state.cfg = await api('GET', '/ui/api/config');
    } catch (e) {
      fail(e.message);
      return;
    }
    $('who-name').textContent = `${state.me.user} · ${state.me.role} · ${state.me.org}`;
    $('who').hidden = false;
    $('nav').hidden = false;
    const admin = state.me.role === 'admin';
    for (const n of document.querySelectorAll('[data-admin]')) n.hidden = !admin;
    const adminRow = $('n-admin-row');
    adminRow.hidden = !state.cfg.can_create_administrative;
    $('n-admin').disabled = !state.cfg.can_create_administrative;
    $('n-admin').checked = false;
    const canCreate = state.cfg.can_create;
    $('new-token-link').hidden = !canCreate;
    document.querySelector('#nav [data-view="new"]').hidden = !canCreate;
    prepareCreateForm();
    if (!location.hash || location.hash === '#/signin') location.hash = '#/tokens';
    else route();
  }

  function showSignIn() {
    $('who').hidden = true;
    $('nav').hidden = true;
    showView('signin');
    $('signin-user').focus();
  }

  function signedOut(message) {
    state.me = null;
    state.cfg = null;
    state.tokens = [];
    forgetSecret();
    showSignIn();
    if (message) fail(message);
  }

  async function onSignIn(ev) {
    ev.preventDefault();
    formError('signin-error', '');
    const username = $('signin-user').value.trim();
    const password = $('signin-pass').value;
    if (!username || !password) {
      formError('signin-error', 'Enter your username and password.');
      return;
    }
    const button = ev.submitter || document.querySelector('#signin-form button');
    button.disabled = true;
    try {
      state.me = await api('POST', '/ui/api/login', { username, password });
      $('signin-pass').value = '';
      clearMessages();
      await signedIn();
    } catch (e) {
      $('signin-pass').value = '';
      formError('signin-error', e.message);
      $('signin-pass').focus();
    } finally {
      button.disabled = false;
    }
  }

  async function onSignOut() {
    try {
      await api('POST', '/ui/api/logout');
    } catch (e) {
      // The session is gone either way once the cookie is cleared.
    }
    signedOut();
    history.replaceState(null, '', '#/signin');
    say('You are signed out.');
  }

  // ---- views and routing ----------------------------------------------

  const VIEWS = ['signin', 'tokens', 'new', 'secret', 'users', 'audit'];

  function showView(name) {
    for (const v of VIEWS) $('view-' + v).hidden = v !== name;
    for (const a of document.querySelectorAll('#nav a')) {
      if (a.dataset.view === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    const h = document.querySelector('#view-' + name + ' h1');
    if (h) {
      h.tabIndex = -1;
      document.title = h.textContent + ' · signet';
    }
  }

  function focusHeading(name) {
    const h = document.querySelector('#view-' + name + ' h1');
    if (h) h.focus({ preventScroll: false });
  }

  function route() {
    if (!state.me) {
      showSignIn();
      return;
    }
    // Leaving the value's screen forgets the value.
    if (state.secret) forgetSecret();
    const view = (location.hash.replace(/^#\//, '') || 'tokens').split('?')[0];
    const admin = state.me.role === 'admin';
    switch (view) {
      case 'new':
        if (!state.cfg.can_create) {
          fail('Only organization admins create tokens here.');
          location.hash = '#/tokens';
          return;
        }
        resetCreateForm();
        showView('new');
        focusHeading('new');
        $('n-name').focus();
        break;
      case 'users':
        if (!admin) return void (location.hash = '#/tokens');
        showView('users');
        focusHeading('users');
        loadUsers();
        break;
      case 'audit':
        if (!admin) return void (location.hash = '#/tokens');
        showView('audit');
        focusHeading('audit');
        loadAudit();
        break;
      default:
        showView('tokens');
        focusHeading('tokens');
        loadTokens();
    }
  }

  // ---- tokens ---------------------------------------------------------

  // A session token is one from POST /user-token without a name: what a
  // script or a sign-in trades a password for, usually for 24 hours. They
  // come by the dozen, so the list shows named tokens unless asked.
  function isSession(t) {
    return !t.name;
  }

  // lifetimeMs is how long a token was made to live.
  function lifetimeMs(t) {
    return Date.parse(t.expires_at) - Date.parse(t.issued_at);
  }

  // warnsOfExpiry: only a token meant to outlive the warning window gets
  // the "expires soon" badge in its last WARN_DAYS; for a 24-hour token,
  // expiring soon is its nature, not news.
  function warnsOfExpiry(t, expMs) {
    return expMs < WARN_DAYS * DAY && lifetimeMs(t) > WARN_DAYS * DAY;
  }

  function statusOf(t) {
    if (t.revoked) return 'revoked';
    if (t.expired || Date.parse(t.expires_at) <= Date.now()) return 'expired';
    if (t.valid_until && Date.parse(t.valid_until) <= Date.now()) return 'revoked';
    return 'active';
  }

  // inGrace: the old value of a token regenerated with a grace period,
  // still working until valid_until.
  function inGrace(t) {
    return Boolean(t.valid_until) && statusOf(t) === 'active';
  }

  // spell says 90 seconds, 30 minutes, 1 hour, 24 hours.
  function spell(seconds) {
    const n = (v, unit) => `${v} ${unit}${v === 1 ? '' : 's'}`;
    if (seconds % 3600 === 0) return n(seconds / 3600, 'hour');
    if (seconds % 60 === 0) return n(seconds / 60, 'minute');
    return n(seconds, 'second');
  }

  // graceChoices are the grace periods Regenerate offers: none, 1 hour and
  // 24 hours, as far as tokens.max_regenerate_grace allows, and the
  // maximum itself when it lies below 24 hours.
  function graceChoices() {
    const maxSec = state.cfg.max_regenerate_grace_seconds || 0;
    const out = [0, 3600, 86400].filter((s) => s <= maxSec);
    if (maxSec > 0 && maxSec < 86400 && !out.includes(maxSec)) out.push(maxSec);
    return out.sort((a, b) => a - b);
  }

  function fmtDate(s) {
    const d = new Date(s);
    if (isNaN(d)) return '—';
    return d.toLocaleDateString(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
  }

  function fmtDateTime(s) {
    const d = new Date(s);
    if (isNaN(d)) return '—';
    return d.toLocaleString(undefined, { year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });
  }

  // relative says "in 3 days", "in 5 hours", "2 days ago".
  // Minutes are counted after rounding, so a moment short of an hour reads
  // "in 1 hour", not "in 60 minutes".
  function relative(ms) {
    const abs = Math.abs(ms);
    let n;
    let unit;
    if (abs >= DAY) {
      n = Math.round(abs / DAY);
      unit = 'day';
    } else if (Math.round(abs / 60000) >= 60) {
      n = Math.round(abs / 3600000);
      unit = 'hour';
    } else {
      n = Math.max(1, Math.round(abs / 60000));
      unit = 'minute';
    }
    const text = `${n} ${unit}${n === 1 ? '' : 's'}`;
    return ms >= 0 ? `in ${text}` : `${text} ago`;
  }

  async function loadTokens() {
    $('tokens-count').textContent = 'Loading…';
    try {
      const data = await api('GET', '/tokens?include_revoked=true&include_expired=true');
      state.tokens = (data && data.tokens) || [];
      renderTokens();
    } catch (e) {
      $('tokens-count').textContent = '';
      if (e.status !== 401) fail(e.message);
    }
  }

  function matches(t, q) {
    if (!q) return true;
    const hay = [t.name, t.description, t.user, t.created_by, t.token_id, t.type, ...(t.scopes || [])]
      .join(' ')
      .toLowerCase();
    return q
      .toLowerCase()
      .split(/\s+/)
      .every((w) => hay.includes(w));
  }

  function renderTokens() {
    const admin = state.me.role === 'admin';
    const q = $('f-search').value.trim();
    const st = $('f-status').value;
    const ty = $('f-type').value;
    const kind = $('f-kind').value;
    const kindOK = (t) => !kind || (kind === 'session') === isSession(t);
    const others = (t) => (!st || statusOf(t) === st) && (!ty || t.type === ty) && matches(t, q);
    const rows = state.tokens.filter((t) => kindOK(t) && others(t));
    const body = $('tokens-body');
    body.replaceChildren(...rows.map((t) => tokenRow(t, admin)));
    $('tokens-empty').hidden = rows.length > 0;
    $('tokens-empty').textContent = state.tokens.length ? 'No tokens match these filters.' : 'No tokens yet.';
    $('tokens-count').textContent = `${rows.length} of ${state.tokens.length} token${state.tokens.length === 1 ? '' : 's'}`;
    // Say what the kind filter leaves out, with a way to see it.
    const hidden = kind ? state.tokens.filter((t) => !kindOK(t) && others(t)).length : 0;
    const note = $('tokens-hidden');
    note.hidden = hidden === 0;
    if (hidden) {
      const plural = hidden === 1 ? '' : 's';
      const verb = hidden === 1 ? 'is' : 'are';
      $('tokens-hidden-text').textContent =
        kind === 'named'
          ? `${hidden} session token${plural} (from POST /user-token, without a name) ${verb} not shown.`
          : `${hidden} named token${plural} ${verb} not shown.`;
      $('tokens-hidden-show').textContent = kind === 'named' ? 'Show session tokens' : 'Show named tokens';
      $('tokens-hidden-show').dataset.kind = kind === 'named' ? 'session' : 'named';
    }
  }

  function tokenRow(t, admin) {
    const status = statusOf(t);
    const expMs = Date.parse(t.expires_at) - Date.now();
    const scopes = t.scopes || [];
    const scopeCell = cell('Scopes');
    const scopeBox = scopeCell.firstChild;
    if (!scopes.length) scopeBox.append(el('span', { class: 'muted', text: 'none (grants nothing)' }));
    for (const s of scopes.slice(0, 4)) scopeBox.append(el('span', { class: 'chip', text: s }));
    if (scopes.length > 4) {
      scopeBox.append(el('span', { class: 'muted', title: scopes.slice(4).join(' '), text: `+${scopes.length - 4} more` }));
    }
    const expires = cell('Expires', {}, el('span', { title: t.expires_at, text: fmtDate(t.expires_at) }));
    const expBox = expires.firstChild;
    if (status === 'active' && warnsOfExpiry(t, expMs)) {
      expBox.append(' ', el('span', { class: 'badge soon', text: `expires ${relative(expMs)}` }));
    } else if (status === 'active') {
      expBox.append(el('span', { class: 'sub', text: relative(expMs) }));
    }
    const actions = el('td', { class: 'row-actions' });
    const label = t.name || t.token_id;
    if (!t.replaced_by) {
      actions.append(el('button', { type: 'button', class: 'small', dataset: { act: 'regenerate', id: t.token_id }, 'aria-label': `Regenerate ${label}`, text: 'Regenerate' }));
    }
    if (state.cfg.can_create) {
      actions.append(el('button', { type: 'button', class: 'small', dataset: { act: 'copy', id: t.token_id }, 'aria-label': `Copy ${label} into a new token`, text: 'Copy' }));
    }
    if (status !== 'revoked') {
      actions.append(el('button', { type: 'button', class: 'small danger', dataset: { act: 'revoke', id: t.token_id }, 'aria-label': `Revoke ${label}`, text: 'Revoke' }));
    }
    const owner = admin
      ? cell('Owner', {}, t.type === 'administrative' ? el('span', { class: 'muted', text: 'organization' }) : t.user, el('span', { class: 'sub', text: t.created_by ? `by ${t.created_by}` : '' }))
      : null;
    return el(
      'tr',
      { dataset: { id: t.token_id, status } },
      isSession(t)
        ? cell('Name', {}, el('span', { class: 'muted', text: 'Session token' }), el('span', { class: 'sub', text: 'from a sign-in (POST /user-token)' }))
        : cell('Name', {}, el('strong', { text: t.name }), t.description ? el('span', { class: 'sub', text: t.description }) : null),
      cell('Type', {}, el('span', { class: 'badge type', text: t.type })),
      owner,
      scopeCell,
      cell('Created', {}, el('span', { title: t.issued_at, text: fmtDate(t.issued_at) })),
      expires,
      cell(
        'Status',
        {},
        el('span', { class: `badge ${status}`, text: status }),
        inGrace(t) ? el('span', { class: 'badge soon grace', title: t.valid_until, text: `valid until ${fmtDateTime(t.valid_until)}` }) : null,
        inGrace(t) ? el('span', { class: 'sub', text: 'regenerated: this old value stops then' }) : null,
      ),
      actions,
    );
  }

  async function onTokenAction(ev) {
    const b = ev.target.closest('button[data-act]');
    if (!b) return;
    const t = state.tokens.find((x) => x.token_id === b.dataset.id);
    if (!t) return;
    const label = t.name || t.token_id;
    clearMessages();
    if (b.dataset.act === 'revoke') {
      const ok = await confirmDialog({
        title: `Revoke “${label}”?`,
        text: inGrace(t)
          ? `This old value still works until ${fmtDateTime(t.valid_until)} (its grace period after Regenerate). Revoking ends that now: anything still using it stops working within seconds. This cannot be undone.`
          : 'Anything that uses this token stops working within seconds. This cannot be undone.',
        ok: 'Revoke token',
        danger: true,
      });
      if (!ok) return b.focus();
      try {
        await api('DELETE', '/tokens/' + encodeURIComponent(t.token_id));
        say(`Token “${label}” is revoked.`);
        await loadTokens();
        $('tokens-h').focus();
      } catch (e) {
        if (e.status !== 401) fail(e.message);
      }
    } else if (b.dataset.act === 'regenerate') {
      const choices = graceChoices();
      const extra = [];
      const select = el('select', { id: 'regen-grace', 'aria-describedby': 'regen-grace-help' });
      for (const sec of choices) {
        select.append(el('option', { value: String(sec) }, sec ? `${spell(sec)}` : 'None: the current value stops at once'));
      }
      const help = el('p', { id: 'regen-grace-help', class: 'help' });
      const explain = () => {
        const sec = Number(select.value);
        const exp = Date.parse(t.expires_at);
        let text = sec
          ? `The current value keeps working for ${spell(sec)}, so that what uses it can move to the new one; then it stops everywhere.`
          : 'The current value stops working at once, everywhere.';
        if (sec && exp < Date.now() + sec * 1000) text += ` It expires before that, on ${fmtDateTime(t.expires_at)}, and stops then.`;
        help.textContent = text;
      };
      if (choices.length > 1) {
        select.addEventListener('change', explain);
        extra.push(el('label', { for: 'regen-grace', text: 'Grace period for the current value' }), select, help);
        explain();
      }
      const ok = await confirmDialog({
        title: `Regenerate “${label}”?`,
        text:
          choices.length > 1
            ? 'You get a new value with the same name, scopes and lifetime (counted from now).'
            : 'You get a new value with the same name, scopes and lifetime (counted from now). The current value stops working at once.',
        ok: 'Regenerate',
        danger: true,
        extra,
      });
      if (!ok) return b.focus();
      const grace = choices.length > 1 ? Number(select.value) : 0;
      try {
        const path = '/tokens/' + encodeURIComponent(t.token_id) + '/regenerate';
        const created = await api('POST', path, grace ? { grace } : undefined);
        showSecret(created, 'Regenerated token');
      } catch (e) {
        if (e.status !== 401) fail(e.message);
      }
    } else if (b.dataset.act === 'copy') {
      const input = el('input', { id: 'copy-name', maxlength: 128, autocomplete: 'off' });
      input.value = `${t.name || 'token'} (copy)`.slice(0, 128);
      const ok = await confirmDialog({
        title: `Copy “${label}”`,
        text: 'A new token with the same type, scopes and lifetime. The original stays valid.',
        ok: 'Create copy',
        extra: [el('label', { for: 'copy-name', text: 'Name of the copy' }), input],
        focus: input,
      });
      if (!ok) return b.focus();
      try {
        const created = await api('POST', '/tokens/' + encodeURIComponent(t.token_id) + '/copy', { name: input.value.trim() });
        showSecret(created, 'Copied token');
      } catch (e) {
        if (e.status !== 401) fail(e.message);
      }
    }
  }

  // ---- the value, once ------------------------------------------------

  function showSecret(created, heading) {
    clearMessages();
    state.secret = created;
    $('secret-h').textContent = heading || 'Your new token';
    $('secret-name').textContent = created.name || '(unnamed)';
    $('secret-id').textContent = created.token_id;
    $('secret-expires').textContent = `${fmtDateTime(created.expires_at)} (${relative(Date.parse(created.expires_at) - Date.now())})`;
    $('secret-value').value = created.token;
    // After a regenerate: when the value it replaces stops working.
    const prev = created.previous_valid_until;
    const graced = Boolean(prev) && Date.parse(prev) > Date.now();
    $('secret-prev-dt').hidden = !graced;
    $('secret-prev').hidden = !graced;
    $('secret-prev').textContent = graced ? `valid until ${fmtDateTime(prev)} (${relative(Date.parse(prev) - Date.now())}), then it stops` : '';
    // Not a route: a reload or the back button must not bring it back.
    history.replaceState(null, '', '#/tokens');
    showView('secret');
    focusHeading('secret');
    say('Token created. Copy the value now: it is shown only this once.');
  }

  function forgetSecret() {
    state.secret = null;
    $('secret-value').value = '';
    $('secret-name').textContent = '';
    $('secret-id').textContent = '';
    $('secret-expires').textContent = '';
    $('secret-prev').textContent = '';
  }

  async function copySecret() {
    if (!state.secret) return;
    const value = state.secret.token;
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error('no async clipboard');
      await navigator.clipboard.writeText(value);
      say('Copied to the clipboard.');
    } catch (e) {
      const ta = $('secret-value');
      ta.focus();
      ta.select();
      let copied = false;
      try {
        copied = document.execCommand('copy');
      } catch (e2) {
        copied = false;
      }
      if (copied) say('Copied to the clipboard.');
      else fail('The browser refused to copy. The value is selected: press Ctrl+C (⌘C on a Mac).');
    }
  }

  function downloadSecret() {
    if (!state.secret) return;
    const slug = (state.secret.name || 'token').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'token';
    const blob = new Blob([state.secret.token + '\n'], { type: 'text/plain' });
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: `signet-${slug}.token` });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
    say('Saved as a file. Keep it somewhere safe, then delete the download.');
  }

  function doneWithSecret() {
    forgetSecret();
    clearMessages();
    history.replaceState(null, '', '#/tokens');
    route();
  }

  // ---- create ---------------------------------------------------------

  function dateInputValue(d) {
    const pad = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  function days(seconds) {
    const d = seconds / 86400;
    return d >= 1 ? `${Math.floor(d)} day${Math.floor(d) === 1 ? '' : 's'}` : `${Math.round(seconds / 3600)} hours`;
  }

  function prepareCreateForm() {
    const cfg = state.cfg;
    const sel = $('n-preset');
    sel.replaceChildren();
    for (const p of cfg.presets) {
      const o = el('option', { value: p.name, disabled: !p.allowed }, p.allowed ? p.name : `${p.name} (beyond your role)`);
      sel.append(o);
    }
    const anyPreset = cfg.presets.some((p) => p.allowed);
    $('n-mode-preset').disabled = !anyPreset;
    $('n-mode-preset').nextElementSibling.textContent = anyPreset ? 'A preset' : 'A preset (none available)';
    const held = cfg.scopes.length ? cfg.scopes.join(', ') : 'nothing';
    $('n-default-help').textContent = defaultScopesText();
    $('n-scope-help').textContent = `Your role may grant: ${cfg.scopes.includes('*') ? 'every scope (*)' : held}. A pattern ending in * covers every scope that starts with it.`;
  }

  function resetCreateForm() {
    const cfg = state.cfg;
    $('new-form').reset();
    formError('new-error', '');
    state.pickedScopes = new Set();
    state.customScopes = [];
    const now = new Date();
    const def = new Date(now.getTime() + cfg.default_ttl_seconds * 1000);
    const max = new Date(now.getTime() + cfg.max_ttl_seconds * 1000);
    const min = new Date(now.getTime() + DAY);
    const input = $('n-expires');
    input.min = dateInputValue(min);
    input.max = dateInputValue(max);
    input.value = dateInputValue(def);
    input.dataset.default = input.value;
    $('n-expires-help').textContent = `Default ${days(cfg.default_ttl_seconds)}; at most ${days(cfg.max_ttl_seconds)} (until ${fmtDate(max.toISOString())}).`;
    // Start from the user's default, never from nothing: the configured
    // default preset when the user may grant it, else every scope they
    // hold (what the API gives a request that names no scopes).
    const preset = defaultPreset();
    const firstAllowed = cfg.presets.find((p) => p.allowed);
    if (preset) {
      $('n-mode-preset').checked = true;
      $('n-preset').value = preset.name;
      // Switching to "one by one" keeps the same scopes ticked.
      state.pickedScopes = new Set(preset.scopes);
    } else {
      $('n-mode-pick').checked = true;
      if (firstAllowed) $('n-preset').value = firstAllowed.name;
      state.pickedScopes = new Set(cfg.scopes);
    }
    syncScopeMode();
    renderScopeList();
  }

  // defaultPreset is the configured default preset (ui.default_preset)
  // when the user may grant it.
  function defaultPreset() {
    const name = state.cfg.default_preset;
    return (name && state.cfg.presets.find((p) => p.name === name && p.allowed)) || null;
  }

  function defaultScopesText() {
    const p = defaultPreset();
    if (p) return `The form starts from the preset “${p.name}”, this issuer's default.`;
    if (!state.cfg.scopes.length) return 'Your role may grant no scope, so a token of yours grants nothing.';
    return 'The form starts with all of your scopes ticked; untick what the token does not need.';
  }

  function syncScopeMode() {
    const preset = $('n-mode-preset').checked;
    $('n-preset-box').hidden = !preset;
    $('n-pick-box').hidden = preset;
    const p = state.cfg.presets.find((x) => x.name === $('n-preset').value);
    $('n-preset-scopes').textContent = p ? `Grants: ${p.scopes.join(' ') || 'nothing'}` : '';
  }

  function knownScopes() {
    const all = new Set([...state.cfg.known_scopes, ...state.cfg.scopes, ...state.customScopes, ...state.pickedScopes]);
    return [...all].sort();
  }

  function renderScopeList() {
    const q = $('n-scope-search').value.trim().toLowerCase();
    const list = $('n-scope-list');
    const items = knownScopes().filter((s) => !q || s.toLowerCase().includes(q));
    list.replaceChildren(
      ...items.map((s, i) => {
        const id = `scope-${i}-${s.replace(/[^A-Za-z0-9_-]/g, '_')}`;
        const box = el('input', { type: 'checkbox', id, value: s, checked: state.pickedScopes.has(s) });
        const from = state.cfg.presets.filter((p) => p.scopes.includes(s)).map((p) => p.name);
        const what = s === '*' ? el('span', { class: 'from', text: '  every scope' }) : s.endsWith('*') ? el('span', { class: 'from', text: `  every scope starting with ${s.slice(0, -1)}` }) : null;
        return el('li', {}, el('div', { class: 'check' }, box, el('label', { for: id }, s, what, from.length ? el('span', { class: 'from', text: `  in ${from.join(', ')}` }) : null)));
      }),
    );
    if (!items.length) {
      list.append(el('li', {}, el('div', { class: 'check muted', text: q ? 'No known scope matches; press Add to use it as typed.' : 'No known scopes; type one and press Add.' })));
    }
    showPicked();
  }

  function showPicked() {
    const picked = [...state.pickedScopes].sort();
    $('n-scope-selected').textContent = picked.length ? picked.join(' ') : 'none — the token will grant nothing';
    $('n-scope-selected').classList.toggle('warn-text', !picked.length);
  }

  // scopeProblem mirrors the issuer's shape rules so mistakes show at once;
  // the issuer checks again and decides.
  function scopeProblem(s) {
    if (!s) return 'Type a scope first.';
    if (s.length > 128) return 'A scope is at most 128 characters long.';
    if (/[^\x21-\x7e]|["\\]/.test(s)) return 'A scope may contain only printable ASCII without spaces, quotes or backslashes.';
    if (s.indexOf('*') >= 0 && s.indexOf('*') !== s.length - 1) return 'A * may only end a scope pattern.';
    const held = state.cfg.scopes;
    const covered = held.some((p) => (p.endsWith('*') ? s.startsWith(p.slice(0, -1)) : p === s));
    if (!covered) return `Your role may not grant “${s}”.`;
    return '';
  }

  function addTypedScope() {
    const s = $('n-scope-search').value.trim();
    const problem = scopeProblem(s);
    if (problem) {
      formError('new-error', problem);
      return;
    }
    formError('new-error', '');
    if (!state.cfg.known_scopes.includes(s) && !state.customScopes.includes(s)) state.customScopes.push(s);
    state.pickedScopes.add(s);
    $('n-scope-search').value = '';
    renderScopeList();
    say(`Scope ${s} added.`);
    $('n-scope-search').focus();
  }

  async function onCreate(ev) {
    ev.preventDefault();
    formError('new-error', '');
    const name = $('n-name').value.trim();
    if (!name) {
      formError('new-error', 'Give the token a name.');
      $('n-name').focus();
      return;
    }
    const body = { name };
    const description = $('n-desc').value.trim();
    if (description) body.description = description;
    body.type = state.cfg.can_create_administrative && $('n-admin').checked ? 'administrative' : 'personal';
    if ($('n-mode-preset').checked) {
      body.preset = $('n-preset').value;
    } else {
      body.scopes = [...state.pickedScopes].sort();
    }
    const input = $('n-expires');
    if (!input.value) {
      formError('new-error', 'Choose an expiry date.');
      input.focus();
      return;
    }
    if (input.value !== input.dataset.default) {
      if (input.value < input.min || input.value > input.max) {
        formError('new-error', `The expiry must be between ${input.min} and ${input.max}.`);
        input.focus();
        return;
      }
      // The chosen day at the current time of day, kept inside the maximum.
      const now = new Date();
      const [y, m, d] = input.value.split('-').map(Number);
      let at = new Date(y, m - 1, d, now.getHours(), now.getMinutes(), 0);
      const max = new Date(now.getTime() + state.cfg.max_ttl_seconds * 1000 - 60000);
      if (at > max) at = max;
      body.expires_at = at.toISOString().replace(/\.\d{3}Z$/, 'Z');
    }
    const button = ev.submitter || document.querySelector('#new-form button[type=submit]');
    button.disabled = true;
    try {
      const created = await api('POST', '/tokens', body);
      showSecret(created, 'Your new token');
    } catch (e) {
      if (e.status !== 401) formError('new-error', e.message);
    } finally {
      button.disabled = false;
    }
  }

  // ---- users (admins) -------------------------------------------------

  async function loadUsers() {
    $('users-org').textContent = state.me.org;
    try {
      const data = await api('GET', '/users');
      const users = (data && data.users) || [];
      $('users-body').replaceChildren(
        ...users.map((u) =>
          el(
            'tr',
            { dataset: { user: u.username } },
            cell('Username', {}, el('strong', { text: u.username }), u.username === state.me.user ? el('span', { class: 'sub', text: 'you' }) : null),
            cell('Email', {}, u.email),
            cell('Role', {}, el('span', { class: 'badge type', text: u.role })),
            cell('Added', { title: u.created_at }, fmtDate(u.created_at)),
            el('td', { class: 'row-actions' }, u.username === state.me.user ? null : el('button', { type: 'button', class: 'small danger', dataset: { act: 'remove-user', user: u.username }, 'aria-label': `Remove ${u.username}`, text: 'Remove' })),
          ),
        ),
      );
    } catch (e) {
      if (e.status !== 401) fail(e.message);
    }
  }

  async function onUserAction(ev) {
    const b = ev.target.closest('button[data-act="remove-user"]');
    if (!b) return;
    const name = b.dataset.user;
    clearMessages();
    const ok = await confirmDialog({
      title: `Remove ${name}?`,
      text: `${name} can no longer sign in, and every personal token of ${name} is revoked at once.`,
      ok: 'Remove user',
      danger: true,
    });
    if (!ok) return b.focus();
    try {
      await api('DELETE', '/users/' + encodeURIComponent(name));
      say(`${name} is removed and their personal tokens are revoked.`);
      await loadUsers();
      $('users-h').focus();
    } catch (e) {
      if (e.status !== 401) fail(e.message);
    }
  }

  async function onAddUser(ev) {
    ev.preventDefault();
    formError('user-error', '');
    const body = {
      username: $('u-name').value.trim(),
      email: $('u-email').value.trim(),
      role: $('u-role').value,
      password: $('u-pass').value,
    };
    if (!body.username || !body.email || !body.password) {
      formError('user-error', 'Fill in the username, email and password.');
      return;
    }
    try {
      await api('POST', '/users', body);
      $('user-form').reset();
      say(`${body.username} is added as ${body.role}.`);
      await loadUsers();
    } catch (e) {
      if (e.status !== 401) formError('user-error', e.message);
    } finally {
      $('u-pass').value = '';
    }
  }

  // ---- audit (admins) -------------------------------------------------

  async function loadAudit(ev) {
    if (ev) ev.preventDefault();
    const q = new URLSearchParams({ limit: '200' });
    const actor = $('a-actor').value.trim();
    if (actor) q.set('actor', actor);
    const since = $('a-since').value;
    if (since) {
      const [y, m, d] = since.split('-').map(Number);
      q.set('since', new Date(y, m - 1, d).toISOString().replace(/\.\d{3}Z$/, 'Z'));
    }
    try {
      const data = await api('GET', '/audit?' + q.toString());
      const events = (data && data.events) || [];
      $('audit-body').replaceChildren(
        ...events.map((e) =>
          el(
            'tr',
            {},
            cell('Time', { title: e.time }, fmtDateTime(e.time)),
            cell('Actor', {}, e.actor || '—'),
            cell('Action', {}, el('code', { text: e.action })),
            cell('Target', { class: 'mono' }, e.target || '—'),
            cell('Client', { class: 'mono' }, e.client_ip || '—'),
            cell('Detail', {}, e.detail || ''),
          ),
        ),
      );
      $('audit-empty').hidden = events.length > 0;
    } catch (e) {
      if (e.status !== 401) fail(e.message);
    }
  }

  // ---- confirmation dialog --------------------------------------------

  function confirmDialog({ title, text, ok, danger, extra, focus }) {
    const dlg = $('confirm');
    $('confirm-h').textContent = title;
    $('confirm-text').textContent = text;
    $('confirm-extra').replaceChildren(...(extra || []));
    const okButton = $('confirm-ok');
    okButton.textContent = ok;
    okButton.className = danger ? 'danger' : 'primary';
    return new Promise((resolve) => {
      dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
      dlg.returnValue = 'cancel';
      dlg.showModal();
      (focus || $('confirm-cancel')).focus();
    });
  }

  // ---- wiring ---------------------------------------------------------

  function wire() {
    $('signin-form').addEventListener('submit', onSignIn);
    $('signout').addEventListener('click', onSignOut);
    window.addEventListener('hashchange', () => {
      clearMessages();
      route();
    });
    // A link to the view already in the address bar changes no hash; it
    // still means "show me that view" (for instance from the value's screen).
    document.addEventListener('click', (ev) => {
      const a = ev.target.closest('a[href^="#/"]');
      if (a && a.getAttribute('href') === location.hash) {
        ev.preventDefault();
        clearMessages();
        route();
      }
    });
    for (const id of ['f-search', 'f-status', 'f-type', 'f-kind']) $(id).addEventListener('input', renderTokens);
    $('tokens-hidden-show').addEventListener('click', () => {
      $('f-kind').value = $('tokens-hidden-show').dataset.kind;
      renderTokens();
      $('f-kind').focus();
    });
    $('filters').addEventListener('submit', (ev) => ev.preventDefault());
    $('tokens-body').addEventListener('click', onTokenAction);
    $('new-form').addEventListener('submit', onCreate);
    $('n-mode-preset').addEventListener('change', syncScopeMode);
    $('n-mode-pick').addEventListener('change', syncScopeMode);
    $('n-preset').addEventListener('change', syncScopeMode);
    $('n-scope-search').addEventListener('input', renderScopeList);
    $('n-scope-search').addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter') {
        ev.preventDefault();
        addTypedScope();
      }
    });
    $('n-scope-add').addEventListener('click', addTypedScope);
    $('n-scope-list').addEventListener('change', (ev) => {
      const box = ev.target;
      if (box.type !== 'checkbox') return;
      if (box.checked) state.pickedScopes.add(box.value);
      else state.pickedScopes.delete(box.value);
      showPicked();
    });
    $('secret-copy').addEventListener('click', copySecret);
    $('secret-download').addEventListener('click', downloadSecret);
    $('secret-done').addEventListener('click', doneWithSecret);
    $('users-body').addEventListener('click', onUserAction);
    $('user-form').addEventListener('submit', onAddUser);
    $('audit-filters').addEventListener('submit', loadAudit);
    // Leaving while a value is on screen loses it for good: ask first.
    window.addEventListener('beforeunload', (ev) => {
      if (state.secret) {
        ev.preventDefault();
        ev.returnValue = '';
      }
    });
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
  else boot();
})();
