// Browser test of signet's token management page (/ui/).
//
// Drives Debian's Chromium with playwright-core against a running issuer
// and checks what a person would: sign in, create a token, see its value
// once, reload and not see it again, revoke it (confirming) and find it
// revoked through the API; a member is offered no administrative token and
// the API refuses one; the page's Content-Security-Policy holds and nothing
// is loaded from outside the issuer. Session tokens (POST /user-token,
// unnamed) stay out of the way under their own filter and wear no expiry
// badge; a long-lived token warns in its last week; New token starts from
// the user's default scopes (the configured default preset for the admin,
// every scope the member holds), never from nothing. Pages of other origins
// (another port of the same site, another site) cannot drive the API through
// a browser that cached an admin's Basic credentials. Regenerate offers a
// grace period (none, 1 hour, 24 hours, within tokens.max_regenerate_grace);
// the old value is then listed as "valid until …" and can still be revoked
// at once.
//
// Environment:
//   SIGNET_UI_URL                 issuer base URL (required), e.g. http://127.0.0.1:8080
//   SIGNET_UI_ADMIN_USER/_PASSWORD    an org admin (required)
//   SIGNET_UI_MEMBER_USER/_PASSWORD   a member of the same org (required)
//   SIGNET_UI_SCREENSHOTS         "1" to write docs/screenshots/*.png, or a directory
//   SIGNET_UI_CHROMIUM            browser binary (default /usr/bin/chromium)
//
// Exit status 0 when every check passed; the last line is "N passed, N failed".

import { chromium } from 'playwright-core';
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`ui.test: ${name} is not set`);
    process.exit(2);
  }
  return v;
}

const BASE = env('SIGNET_UI_URL').replace(/\/+$/, '');
const ADMIN = { user: env('SIGNET_UI_ADMIN_USER'), pass: env('SIGNET_UI_ADMIN_PASSWORD') };
const MEMBER = { user: env('SIGNET_UI_MEMBER_USER'), pass: env('SIGNET_UI_MEMBER_PASSWORD') };
const SHOTS = (() => {
  const v = process.env.SIGNET_UI_SCREENSHOTS;
  if (!v || v === '0') return null;
  return v === '1' ? resolve(here, '../../docs/screenshots') : resolve(v);
})();
const CHROMIUM = process.env.SIGNET_UI_CHROMIUM || '/usr/bin/chromium';
const ORIGIN = new URL(BASE).origin;
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const EXPECTED_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const STEP_TIMEOUT = 15000;

// ---- a tiny runner: steps run in order, the first failure stops the rest ----

let passed = 0;
let failed = 0;
const problems = []; // console errors, CSP violations, outside requests

async function step(name, fn) {
  if (failed) return;
  const started = Date.now();
  try {
    await fn();
    passed++;
    console.log(`ok ${passed} - ${name} (${Date.now() - started} ms)`);
  } catch (e) {
    failed++;
    console.log(`not ok - ${name}`);
    console.log(String(e && e.stack ? e.stack : e).replace(/^/gm, '    '));
  }
}

// ---- the API, as curl would speak it ----

async function api(method, path, who, body) {
  const headers = { Accept: 'application/json' };
  if (who) headers.Authorization = 'Basic ' + Buffer.from(`${who.user}:${who.pass}`).toString('base64');
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(BASE + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), redirect: 'manual' });
  const text = await resp.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  return { status: resp.status, headers: resp.headers, json, text };
}

async function apiOK(method, path, who, body, want) {
  const r = await api(method, path, who, body);
  assert.equal(r.status, want, `${method} ${path}: got status ${r.status}, want ${want}: ${r.text}`);
  return r.json;
}

async function shot(page, name, opts = {}) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  // Keep the caret and focus rings out of the pictures.
  await page.evaluate(() => document.activeElement && document.activeElement.blur && document.activeElement.blur());
  await page.screenshot({ path: join(SHOTS, name), fullPage: opts.fullPage !== false, animations: 'disabled', caret: 'hide' });
}

// watch records anything the page should never do.
function watch(page, label) {
  page.on('console', (msg) => {
    // Chromium logs every 4xx answer as "Failed to load resource"; the
    // 401s and 403s this test provokes on purpose are not faults.
    if (msg.type() === 'error' && !/^Failed to load resource: the server responded with a status of 40[13]\b/.test(msg.text())) {
      problems.push(`${label}: console error: ${msg.text()}`);
    }
  });
  page.on('pageerror', (err) => problems.push(`${label}: uncaught: ${err.message}`));
  page.on('request', (req) => {
    const u = req.url();
    if (!u.startsWith(ORIGIN + '/') && !u.startsWith('blob:') && !u.startsWith('data:')) problems.push(`${label}: request outside the issuer: ${u}`);
  });
  // Leaving while a value is shown asks first; the test always agrees.
  page.on('dialog', (d) => d.accept());
}

async function signIn(page, who) {
  await page.goto(BASE + '/ui/');
  const form = page.locator('#view-signin');
  await form.getByLabel('Username').fill(who.user);
  await form.getByLabel('Password').fill(who.pass);
  await form.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Access tokens' }).waitFor();
}

function row(page, name) {
  return page.locator('#tokens-body tr').filter({ has: page.locator('strong', { hasText: new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) });
}

// otherOrigin serves a blank page on another loopback port: a page that
// is not the issuer's, on the issuer's site (same host, another port) or,
// under another host name, on another site.
function otherOrigin() {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>another origin</title><p>not the issuer');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, port: server.address().port }));
  });
}

// crossOriginAttacks makes the browser send, from page p (of another
// origin), every kind of request a page can send without CORS: fetch and
// XMLHttpRequest with a raw body (no Content-Type), sendBeacon, and plain
// HTML forms, to add an admin and to regenerate tokenId. It returns how
// many requests to the issuer it made.
async function crossOriginAttacks(p, pageURL, tokenId, tag) {
  await p.goto(pageURL);
  await p.evaluate(
    async ({ base, id, tag }) => {
      const admin = (how) => JSON.stringify({ username: `mallory-${tag}-${how}`, password: 'mallory-password-1', email: `m-${how}@evil.example`, role: 'admin' });
      const bytes = (s) => new TextEncoder().encode(s); // a raw body: no Content-Type
      const regen = base + '/tokens/' + encodeURIComponent(id) + '/regenerate';
      const quiet = (pr) => pr.then(() => {}, () => {});
      await quiet(fetch(base + '/users', { method: 'POST', mode: 'no-cors', credentials: 'include', body: bytes(admin('fetch')) }));
      await quiet(fetch(regen, { method: 'POST', mode: 'no-cors', credentials: 'include', body: new Uint8Array(0) }));
      const xhr = (url, body) =>
        new Promise((resolve) => {
          const x = new XMLHttpRequest();
          x.open('POST', url);
          x.withCredentials = true;
          x.onloadend = resolve;
          x.send(body);
        });
      await xhr(base + '/users', bytes(admin('xhr')));
      await xhr(regen, null);
      if (!navigator.sendBeacon(base + '/users', new Blob([admin('beacon')]))) throw new Error('sendBeacon refused to queue');
      if (!navigator.sendBeacon(regen, new Blob([]))) throw new Error('sendBeacon refused to queue');
    },
    { base: BASE, id: tokenId, tag },
  );
  // Plain HTML forms: an empty POST to regenerate, and a text/plain body
  // that spells a JSON object to add an admin.
  const submit = async (action, enctype, fields) => {
    await p.goto(pageURL);
    await Promise.all([
      p.waitForURL(action),
      p.evaluate(
        ({ action, enctype, fields }) => {
          const f = document.createElement('form');
          f.method = 'POST';
          f.action = action;
          f.enctype = enctype;
          for (const [name, value] of fields) {
            const i = document.createElement('input');
            i.type = 'hidden';
            i.name = name;
            i.value = value;
            f.append(i);
          }
          document.body.append(f);
          f.submit();
        },
        { action, enctype, fields },
      ),
    ]);
  };
  await submit(BASE + '/tokens/' + encodeURIComponent(tokenId) + '/regenerate', 'application/x-www-form-urlencoded', []);
  const json = JSON.stringify({ username: `mallory-${tag}-form`, password: 'mallory-password-1', email: 'm-form@evil.example', role: 'admin', x: '' });
  await submit(BASE + '/users', 'text/plain', [[json.slice(0, -2), '"}']]);
  return 8;
}

async function main() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });
  const ctxOpts = { viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1, locale: 'en-US', timezoneId: 'UTC', colorScheme: 'light' };
  try {
    let created; // {token, token_id, name}
    let adminTokenId; // an administrative token made through the API

    await step('the page is served with a strict Content-Security-Policy', async () => {
      const r = await api('GET', '/ui/');
      assert.equal(r.status, 200);
      assert.equal(r.headers.get('content-security-policy'), EXPECTED_CSP);
      assert.equal(r.headers.get('x-frame-options'), 'DENY');
      assert.equal(r.headers.get('x-content-type-options'), 'nosniff');
      assert.equal(r.headers.get('referrer-policy'), 'no-referrer');
      assert.match(r.headers.get('content-type'), /^text\/html/);
      const js = await api('GET', '/ui/assets/app.js');
      assert.match(js.headers.get('content-type'), /^text\/javascript/);
    });

    await step('some tokens exist already (made through the API)', async () => {
      const inTwoDays = new Date(Date.now() + 2 * 86400000 + 3600000).toISOString().replace(/\.\d+Z$/, 'Z');
      await apiOK('POST', '/tokens', ADMIN, { name: 'reports-nightly', description: 'Nightly report export', scopes: ['reports:read'], expires_at: inTwoDays }, 201);
      const infra = await apiOK('POST', '/tokens', ADMIN, { name: 'grafana', description: 'Dashboards', type: 'administrative', scopes: ['metrics:read', 'reports:read'], expires_in: '2160h' }, 201);
      adminTokenId = infra.token_id;
      const old = await apiOK('POST', '/tokens', ADMIN, { name: 'old-laptop', scopes: ['bucket:in.c-main:read'] }, 201);
      await apiOK('DELETE', '/tokens/' + encodeURIComponent(old.token_id), ADMIN, undefined, 204);
      await apiOK('POST', '/tokens', MEMBER, { name: 'notebook', scopes: [] }, 201);
      // Session tokens: what scripts and sign-ins trade a password for.
      for (let i = 0; i < 3; i++) await apiOK('POST', '/user-token', ADMIN, undefined, 200);
      await apiOK('POST', '/user-token', MEMBER, undefined, 200);
    });

    const ctx = await browser.newContext(ctxOpts);
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: ORIGIN });
    const page = await ctx.newPage();
    page.setDefaultTimeout(STEP_TIMEOUT);
    watch(page, 'admin');

    await step('an admin signs in', async () => {
      await page.goto(BASE + '/ui');
      assert.equal(new URL(page.url()).pathname, '/ui/');
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      await shot(page, 'signin.png');
      // A wrong password is refused in the page, without a browser dialog.
      const form = page.locator('#view-signin');
      await form.getByLabel('Username').fill(ADMIN.user);
      await form.getByLabel('Password').fill('not-the-password');
      await form.getByRole('button', { name: 'Sign in' }).click();
      await page.locator('#signin-error').filter({ hasText: 'wrong' }).waitFor();
      assert.equal(await form.getByLabel('Password').inputValue(), '', 'the password field is cleared');
      await form.getByLabel('Password').fill(ADMIN.pass);
      await form.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Access tokens' }).waitFor();
      await row(page, 'grafana').waitFor();
      const cookies = await ctx.cookies(BASE);
      const c = cookies.find((x) => x.name === 'signet_session');
      assert.ok(c, 'a signet_session cookie is set');
      assert.ok(c.httpOnly, 'the session cookie is HttpOnly');
      assert.equal(c.sameSite, 'Strict');
      const storage = await page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
      assert.equal(storage, '{}{}', 'nothing in browser storage');
      assert.ok(!(await page.content()).includes(ADMIN.pass), 'the password is not in the page');
    });

    await step('named tokens by default; session tokens under their own filter, without expiry badges', async () => {
      assert.equal(await page.getByLabel('Show', { exact: true }).inputValue(), 'named');
      await row(page, 'grafana').waitFor();
      assert.equal(await page.locator('#tokens-body tr', { hasText: 'Session token' }).count(), 0, 'no session token among the named ones');
      await page.locator('#tokens-hidden', { hasText: '4 session tokens' }).waitFor();
      // A token made to live two days is not warned about: expiring soon is its plan.
      const nightly = row(page, 'reports-nightly');
      await nightly.locator('.sub', { hasText: /in 2 days/ }).waitFor();
      assert.equal(await nightly.locator('.badge.soon').count(), 0, 'a 2-day token wears no expiry badge');
      await page.getByRole('button', { name: 'Show session tokens' }).click();
      assert.equal(await page.getByLabel('Show', { exact: true }).inputValue(), 'session');
      const sessions = page.locator('#tokens-body tr');
      await page.waitForFunction(() => document.querySelectorAll('#tokens-body tr').length === 4);
      for (let i = 0; i < 4; i++) {
        const r = sessions.nth(i);
        assert.ok((await r.innerText()).includes('Session token'), 'the filter shows session tokens');
        assert.ok(/in 2[34] hours/.test(await r.locator('[data-label="Expires"]').innerText()), 'a session token says when it ends');
      }
      assert.equal(await page.locator('#tokens-body .badge.soon').count(), 0, 'no session token wears an expiry badge');
      await page.locator('#tokens-hidden', { hasText: /named tokens are not shown/ }).waitFor();
      await page.getByLabel('Show', { exact: true }).selectOption('');
      await row(page, 'grafana').waitFor();
      assert.equal(await page.locator('#tokens-body tr', { hasText: 'Session token' }).count(), 4);
      assert.ok(await page.locator('#tokens-hidden').isHidden(), 'nothing is left out under All');
      await page.getByLabel('Show', { exact: true }).selectOption('named');
    });

    await step('the list shows owner, scopes and status', async () => {
      assert.equal(await row(page, 'grafana').locator('[data-label="Owner"]').innerText().then((s) => s.includes('organization')), true);
      assert.equal(await row(page, 'old-laptop').count(), 0, 'revoked tokens are hidden under the Active filter');
      await page.getByLabel('Status', { exact: true }).selectOption('');
      await row(page, 'old-laptop').locator('.badge.revoked').waitFor();
      await row(page, 'notebook').waitFor(); // admins see members' tokens
      await page.getByLabel('Search').fill('dashboards');
      assert.equal(await page.locator('#tokens-body tr').count(), 1);
      await page.getByLabel('Search').fill('');
      await page.getByLabel('Type', { exact: true }).selectOption('administrative');
      assert.equal(await page.locator('#tokens-body tr').count(), 1);
      await page.getByLabel('Type', { exact: true }).selectOption('');
      await shot(page, 'tokens.png');
      await page.getByLabel('Status', { exact: true }).selectOption('active');
    });

    await step('an admin creates an administrative token', async () => {
      await page.getByRole('link', { name: 'New token' }).first().click();
      await page.getByRole('heading', { name: 'New token' }).waitFor();
      await page.getByLabel('Name', { exact: true }).fill('ci-deploy');
      await page.getByLabel('Description').fill('Deploys from CI to production');
      // The form starts from the configured default preset, visibly.
      assert.ok(await page.getByLabel('A preset').isChecked(), 'the default preset is chosen');
      assert.equal(await page.getByLabel('Preset', { exact: true }).inputValue(), 'deploy');
      await page.locator('#n-preset-scopes', { hasText: 'deploy:run registry:push' }).waitFor();
      await page.locator('#n-default-help', { hasText: 'deploy' }).waitFor();
      // One by one keeps those scopes ticked.
      await page.getByLabel('Pick scopes one by one').check();
      await page.locator('#n-scope-selected', { hasText: 'deploy:run registry:push' }).waitFor();
      const admin = page.getByLabel(/Administrative token/);
      assert.ok(await admin.isVisible(), 'admins are offered the administrative checkbox');
      await admin.check();
      const expires = page.getByLabel('Expires on');
      assert.match(await expires.inputValue(), /^\d{4}-\d{2}-\d{2}$/, 'the expiry defaults from the config');
      const in90 = new Date(Date.now() + 90 * 86400000).toISOString().slice(0, 10);
      await expires.fill(in90);
      const search = page.getByLabel('Find or add a scope');
      // deploy:run comes from a preset of the test config: picked from the
      // list when offered, typed in otherwise.
      await search.fill('deploy');
      const listed = page.locator('#n-scope-list').getByLabel('deploy:run');
      if (await listed.count()) {
        await listed.check();
      } else {
        await search.fill('deploy:run');
        await search.press('Enter');
      }
      await search.fill('registry:push');
      await search.press('Enter');
      await page.locator('#n-scope-selected', { hasText: 'deploy:run registry:push' }).waitFor();
      await search.fill('');
      await shot(page, 'create.png');
      await page.getByRole('button', { name: 'Create token' }).click();
      await page.getByRole('heading', { name: 'Your new token' }).waitFor();
      const value = await page.getByLabel('Token value').inputValue();
      assert.match(value, JWT, 'the value is a JWT');
      await page.getByText('You will not see it again').waitFor();
      created = { token: value, token_id: (await page.locator('#secret-id').innerText()).trim(), name: 'ci-deploy' };
      const meta = await apiOK('GET', '/tokens/' + encodeURIComponent(created.token_id), ADMIN, undefined, 200);
      assert.equal(meta.type, 'administrative');
      assert.deepEqual(meta.scopes, ['deploy:run', 'registry:push']);
      const days = (Date.parse(meta.expires_at) - Date.now()) / 86400000;
      assert.ok(days > 89 && days < 91, `expiry in ~90 days, got ${days}`);
      assert.ok(!meta.token && !JSON.stringify(meta).includes(value), 'the API never shows the value again');
      await shot(page, 'token-once.png');
    });

    await step('Copy and Download hand over the value', async () => {
      await page.getByRole('button', { name: 'Copy', exact: true }).click();
      await page.locator('#status', { hasText: 'Copied' }).waitFor();
      assert.equal(await page.evaluate(() => navigator.clipboard.readText()), created.token);
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
      assert.match(download.suggestedFilename(), /^signet-ci-deploy\.token$/);
      const path = await download.path();
      assert.equal(readFileSync(path, 'utf8').trim(), created.token);
    });

    await step('after a reload the value is gone for good', async () => {
      await page.reload();
      await page.getByRole('heading', { name: 'Access tokens' }).waitFor();
      await row(page, 'ci-deploy').waitFor();
      const html = await page.content();
      assert.ok(!html.includes(created.token), 'the value is not in the page');
      assert.equal(await page.getByLabel('Token value').inputValue(), '');
      assert.ok(!(await page.getByText('You will not see it again').isVisible()));
      const [list] = await Promise.all([
        page.waitForResponse((r) => r.url().includes('/tokens?')),
        page.getByRole('link', { name: 'Tokens', exact: true }).click(),
      ]);
      assert.ok(!(await list.text()).includes(created.token), 'the list never carries values');
    });

    await step('revoking asks for confirmation, then the API reports it revoked', async () => {
      const r = row(page, 'ci-deploy');
      await r.getByRole('button', { name: 'Revoke ci-deploy' }).click();
      const dlg = page.getByRole('dialog');
      await dlg.getByText('Revoke “ci-deploy”?').waitFor();
      // Cancel keeps it.
      await dlg.getByRole('button', { name: 'Cancel' }).click();
      assert.equal((await apiOK('GET', '/tokens/' + encodeURIComponent(created.token_id), ADMIN, undefined, 200)).revoked, false);
      await r.getByRole('button', { name: 'Revoke ci-deploy' }).click();
      await dlg.getByText('cannot be undone').waitFor();
      await shot(page, 'revoke-confirm.png', { fullPage: false });
      await dlg.getByRole('button', { name: 'Revoke token' }).click();
      await page.locator('#status', { hasText: 'revoked' }).waitFor();
      await row(page, 'ci-deploy').waitFor({ state: 'detached' });
      const meta = await apiOK('GET', '/tokens/' + encodeURIComponent(created.token_id), ADMIN, undefined, 200);
      assert.equal(meta.revoked, true);
      assert.equal(meta.active, false);
      const info = await apiOK('GET', '/user-token?token=' + encodeURIComponent(created.token), ADMIN, undefined, 200);
      assert.equal(info.revoked, true);
      await apiOK('GET', '/revocations/' + encodeURIComponent(created.token_id), null, undefined, 200);
    });

    await step('regenerate shows the new value once and revokes the old one', async () => {
      const before = (await apiOK('GET', '/tokens', ADMIN, undefined, 200)).tokens.find((t) => t.name === 'reports-nightly');
      await row(page, 'reports-nightly').getByRole('button', { name: 'Regenerate reports-nightly' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Regenerate' }).click();
      await page.getByRole('heading', { name: 'Regenerated token' }).waitFor();
      const value = await page.getByLabel('Token value').inputValue();
      assert.match(value, JWT);
      const newId = (await page.locator('#secret-id').innerText()).trim();
      assert.notEqual(newId, before.token_id);
      assert.equal((await apiOK('GET', '/tokens/' + encodeURIComponent(before.token_id), ADMIN, undefined, 200)).revoked, true);
      assert.equal((await apiOK('GET', '/tokens/' + encodeURIComponent(newId), ADMIN, undefined, 200)).active, true);
      await page.getByRole('button', { name: 'Done, I saved it' }).click();
      await page.getByRole('heading', { name: 'Access tokens' }).waitFor();
      assert.ok(!(await page.content()).includes(value));
    });

    await step('regenerate with a grace period keeps the old value until then, shown as “valid until” in the list; revoking ends it', async () => {
      const old = await apiOK('POST', '/tokens', ADMIN, { name: 'etl-grace', scopes: ['reports:read'] }, 201);
      await page.reload();
      await row(page, 'etl-grace').getByRole('button', { name: 'Regenerate etl-grace' }).click();
      const dlg = page.getByRole('dialog');
      const grace = dlg.getByLabel('Grace period for the current value');
      // tokens.max_regenerate_grace is 24h here: none, 1 hour, 24 hours.
      assert.deepEqual(await grace.locator('option').allInnerTexts(), ['None: the current value stops at once', '1 hour', '24 hours']);
      await grace.selectOption({ label: '1 hour' });
      await dlg.getByText('keeps working for 1 hour').waitFor();
      await shot(page, 'regenerate-grace.png', { fullPage: false });
      const asked = Date.now();
      await dlg.getByRole('button', { name: 'Regenerate' }).click();
      await page.getByRole('heading', { name: 'Regenerated token' }).waitFor();
      assert.match(await page.locator('#secret-prev').innerText(), /^valid until .+ \(in 1 hour\), then it stops$/);
      const newId = (await page.locator('#secret-id').innerText()).trim();
      const meta = await apiOK('GET', '/tokens/' + encodeURIComponent(old.token_id), ADMIN, undefined, 200);
      assert.equal(meta.active, true, 'the old value works during its grace period');
      assert.equal(meta.revoked, false);
      assert.equal(meta.replaced_by, newId);
      const until = Date.parse(meta.valid_until);
      assert.ok(Math.abs(until - asked - 3600000) < 60000, `valid_until ${meta.valid_until}: want about an hour from now`);
      await page.getByRole('button', { name: 'Done, I saved it' }).click();
      await page.getByRole('heading', { name: 'Access tokens' }).waitFor();
      const oldRow = page.locator(`#tokens-body tr[data-id="${old.token_id}"]`);
      await oldRow.locator('.badge.grace', { hasText: /^valid until / }).waitFor();
      assert.equal(await oldRow.getAttribute('data-status'), 'active');
      assert.equal(await oldRow.getByRole('button', { name: 'Regenerate etl-grace' }).count(), 0, 'a replaced token is not regenerated again');
      await page.locator(`#tokens-body tr[data-id="${newId}"]`).waitFor();
      await shot(page, 'tokens-grace.png');
      // Revoking the old value during its grace period: at once.
      await oldRow.getByRole('button', { name: 'Revoke etl-grace' }).click();
      await dlg.getByText('Revoking ends that now').waitFor();
      await dlg.getByRole('button', { name: 'Revoke token' }).click();
      await page.locator('#status', { hasText: 'revoked' }).waitFor();
      const after = await apiOK('GET', '/tokens/' + encodeURIComponent(old.token_id), ADMIN, undefined, 200);
      assert.equal(after.revoked, true);
      assert.equal(after.active, false);
      assert.equal((await apiOK('GET', '/tokens/' + encodeURIComponent(newId), ADMIN, undefined, 200)).active, true);
    });

    await step('copy makes a new token and leaves the original valid', async () => {
      await row(page, 'grafana').getByRole('button', { name: 'Copy grafana into a new token' }).click();
      const dlg = page.getByRole('dialog');
      await dlg.getByLabel('Name of the copy').fill('grafana-staging');
      await dlg.getByRole('button', { name: 'Create copy' }).click();
      await page.getByRole('heading', { name: 'Copied token' }).waitFor();
      assert.match(await page.getByLabel('Token value').inputValue(), JWT);
      await page.getByRole('button', { name: 'Done, I saved it' }).click();
      await row(page, 'grafana-staging').waitFor();
      assert.equal((await apiOK('GET', '/tokens/' + encodeURIComponent(adminTokenId), ADMIN, undefined, 200)).active, true);
    });

    await step('admins add and remove users of their org', async () => {
      await page.getByRole('link', { name: 'Users' }).click();
      await page.getByRole('heading', { name: /Users of/ }).waitFor();
      await page.locator('#users-body tr', { hasText: MEMBER.user }).waitFor();
      const form = page.locator('#user-form');
      await form.getByLabel('Username').fill('carol');
      await form.getByLabel('Email').fill('carol@example.com');
      await form.getByLabel('Role').selectOption('member');
      await form.getByLabel('Password').fill('carol-password-1');
      await page.getByRole('button', { name: 'Add user' }).click();
      await page.locator('#users-body tr', { hasText: 'carol' }).waitFor();
      await shot(page, 'users.png');
      assert.ok((await apiOK('GET', '/users', ADMIN, undefined, 200)).users.some((u) => u.username === 'carol'));
      await page.getByRole('button', { name: 'Remove carol' }).click();
      await page.getByRole('dialog').getByRole('button', { name: 'Remove user' }).click();
      await page.locator('#users-body tr', { hasText: 'carol' }).waitFor({ state: 'detached' });
      assert.ok(!(await apiOK('GET', '/users', ADMIN, undefined, 200)).users.some((u) => u.username === 'carol'));
      assert.equal(await page.getByRole('button', { name: `Remove ${ADMIN.user}` }).count(), 0, 'admins cannot remove themselves here');
    });

    await step('admins read the audit log', async () => {
      await page.getByRole('link', { name: 'Audit log' }).click();
      await page.getByRole('heading', { name: 'Audit log' }).waitFor();
      for (const action of ['token.create', 'token.revoke', 'user.add', 'user.remove', 'session.login', 'login.failed']) {
        await page.locator('#audit-body code', { hasText: action }).first().waitFor();
      }
      await page.getByLabel('Actor').fill(MEMBER.user);
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.waitForFunction((who) => {
        const actors = [...document.querySelectorAll('#audit-body td[data-label="Actor"]')].map((td) => td.textContent);
        return actors.length > 0 && actors.every((a) => a === who);
      }, MEMBER.user);
      await page.getByLabel('Actor').fill('');
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.locator('#audit-body code', { hasText: 'session.login' }).first().waitFor();
      await shot(page, 'audit.png', { fullPage: false });
    });

    await step('signing out ends the session', async () => {
      await page.getByRole('link', { name: 'Tokens', exact: true }).click();
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
      const status = await page.evaluate(async () => (await fetch('/ui/api/session')).status);
      assert.equal(status, 401);
      await page.reload();
      await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    });
    await ctx.close();

    await step('a token meant to live long warns in its last week', async () => {
      // The browser's clock 86 days on: grafana (90 days) has 4 days left.
      const later = await browser.newContext(ctxOpts);
      await later.clock.setFixedTime(new Date(Date.now() + 86 * 86400000));
      const p = await later.newPage();
      p.setDefaultTimeout(STEP_TIMEOUT);
      watch(p, 'later');
      await signIn(p, ADMIN);
      await row(p, 'grafana').locator('.badge.soon', { hasText: /expires in 4 days/ }).waitFor();
      await later.close();
    });

    await step('the page is usable at phone width (390px)', async () => {
      const phone = await browser.newContext({ ...ctxOpts, viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
      const p = await phone.newPage();
      p.setDefaultTimeout(STEP_TIMEOUT);
      watch(p, 'phone');
      await signIn(p, ADMIN);
      await row(p, 'grafana').waitFor();
      const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no sideways scrolling at 390px: ${overflow}px too wide`);
      await shot(p, 'phone-tokens.png', { fullPage: false });
      await p.getByRole('link', { name: 'New token' }).first().click();
      await p.getByRole('heading', { name: 'New token' }).waitFor();
      assert.ok((await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)) <= 0);
      await shot(p, 'phone-create.png', { fullPage: false });
      await phone.close();
    });

    await step('a member is offered no administrative token and cannot see the admin’s', async () => {
      const mctx = await browser.newContext(ctxOpts);
      const p = await mctx.newPage();
      p.setDefaultTimeout(STEP_TIMEOUT);
      watch(p, 'member');
      await signIn(p, MEMBER);
      await p.getByLabel('Status', { exact: true }).selectOption('');
      await row(p, 'notebook').waitFor();
      for (const name of ['grafana', 'grafana-staging', 'ci-deploy', 'reports-nightly']) {
        assert.equal(await row(p, name).count(), 0, `member sees ${name}`);
      }
      assert.ok(!(await p.getByRole('link', { name: 'Users' }).isVisible()));
      assert.ok(!(await p.getByRole('link', { name: 'Audit log' }).isVisible()));
      await p.getByRole('link', { name: 'New token' }).first().click();
      await p.getByRole('heading', { name: 'New token' }).waitFor();
      assert.equal(await p.getByLabel(/Administrative token/).isVisible(), false, 'no administrative checkbox for members');
      // The default preset (deploy) is beyond the member's role: the form
      // starts from every scope the member holds, ticked and said.
      assert.ok(await p.getByLabel('Pick scopes one by one').isChecked());
      assert.equal((await p.locator('#n-scope-selected').innerText()).trim(), 'bucket:* reports:*');
      await p.locator('#n-default-help', { hasText: 'all of your scopes' }).waitFor();
      // One click makes a token that grants what the member holds, not nothing.
      await p.getByLabel('Name', { exact: true }).fill('member-default');
      await p.getByRole('button', { name: 'Create token' }).click();
      await p.getByRole('heading', { name: 'Your new token' }).waitFor();
      const defId = (await p.locator('#secret-id').innerText()).trim();
      assert.deepEqual((await apiOK('GET', '/tokens/' + encodeURIComponent(defId), MEMBER, undefined, 200)).scopes, ['bucket:*', 'reports:*']);
      await p.getByRole('button', { name: 'Done, I saved it' }).click();
      await p.getByRole('heading', { name: 'Access tokens' }).waitFor();
      await p.locator('#tokens-hidden', { hasText: '1 session token (' }).waitFor();
      // The member creates a personal token with one scope through the form.
      await p.getByRole('link', { name: 'New token' }).first().click();
      await p.getByRole('heading', { name: 'New token' }).waitFor();
      await p.locator('#n-scope-list input[value="bucket:*"]').uncheck();
      await p.locator('#n-scope-list input[value="reports:*"]').uncheck();
      await p.locator('#n-scope-selected', { hasText: 'the token will grant nothing' }).waitFor();
      await p.getByLabel('Name', { exact: true }).fill('member-report');
      await p.getByLabel('Find or add a scope').fill('reports:read');
      await p.getByLabel('Find or add a scope').press('Enter');
      await p.getByRole('button', { name: 'Create token' }).click();
      await p.getByRole('heading', { name: 'Your new token' }).waitFor();
      const reportId = (await p.locator('#secret-id').innerText()).trim();
      assert.deepEqual((await apiOK('GET', '/tokens/' + encodeURIComponent(reportId), MEMBER, undefined, 200)).scopes, ['reports:read']);
      await p.getByRole('button', { name: 'Done, I saved it' }).click();
      // The API refuses an administrative token to the member, by password or by session.
      await apiOK('POST', '/tokens', MEMBER, { name: 'sneaky', type: 'administrative', scopes: [] }, 403);
      const viaSession = await p.evaluate(async () => {
        const s = await (await fetch('/ui/api/session')).json();
        const post = (headers) =>
          fetch('/tokens', { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: JSON.stringify({ name: 'sneaky', type: 'administrative', scopes: [] }) }).then((r) => r.status);
        return { withCsrf: await post({ 'X-CSRF-Token': s.csrf_token }), withoutCsrf: await post({}) };
      });
      assert.deepEqual(viaSession, { withCsrf: 403, withoutCsrf: 403 });
      const list = await apiOK('GET', '/tokens?include_revoked=true&include_expired=true', MEMBER, undefined, 200);
      assert.ok(list.tokens.every((t) => t.type === 'personal' && t.user === MEMBER.user), 'members list only their own personal tokens');
      await apiOK('GET', '/tokens/' + encodeURIComponent(adminTokenId), MEMBER, undefined, 404);
      await apiOK('DELETE', '/tokens/' + encodeURIComponent(adminTokenId), MEMBER, undefined, 404);
      await apiOK('GET', '/users', MEMBER, undefined, 403);
      await mctx.close();
    });

    await step('pages of other origins cannot drive the API with cached Basic credentials', async () => {
      const victim = await apiOK('POST', '/tokens', ADMIN, { name: 'csrf-target', scopes: ['reports:read'] }, 201);
      const usersBefore = (await apiOK('GET', '/users', ADMIN, undefined, 200)).users.map((u) => u.username).sort();
      const other = await otherOrigin();
      const bctx = await browser.newContext(ctxOpts);
      try {
        // The admin once opened an issuer URL with credentials: the
        // browser caches them and attaches them to later requests.
        const seed = await bctx.newPage();
        const withCreds = new URL(BASE + '/tokens');
        withCreds.username = ADMIN.user;
        withCreds.password = ADMIN.pass;
        const seeded = await seed.goto(withCreds.href);
        assert.equal(seeded.status(), 200, 'the admin opened the issuer with Basic credentials');

        const sent = []; // every state-changing request the browser sent to the issuer
        bctx.on('request', (req) => {
          if (req.url().startsWith(ORIGIN + '/') && req.method() !== 'GET') sent.push(req);
        });
        const host = new URL(BASE).hostname;
        const sameSite = `http://${host}:${other.port}/`; // another port: same site, another origin
        const otherSite = `http://${host === 'localhost' ? '127.0.0.1' : 'localhost'}:${other.port}/`;
        const p = await bctx.newPage();
        p.setDefaultTimeout(STEP_TIMEOUT);
        let want = 0;
        for (const [tag, pageURL] of [['samesite', sameSite], ['crosssite', otherSite]]) {
          const from = sent.length;
          // A read from this page shows whether the browser attaches the
          // cached credentials here: 200 means it does (across ports of one
          // site it does; Chromium partitions its auth cache by site).
          await p.goto(pageURL);
          const probe = ORIGIN + '/tokens?probe=' + tag;
          const [read] = await Promise.all([
            p.waitForResponse((r) => r.url() === probe),
            p.evaluate((u) => fetch(u, { mode: 'no-cors', credentials: 'include' }).then(() => {}, () => {}), probe),
          ]);
          if (tag === 'samesite') assert.equal(read.status(), 200, `a read from ${pageURL} carried the cached credentials`);
          else console.log(`    # a read from ${pageURL} got ${read.status()}`);
          want += await crossOriginAttacks(p, pageURL, victim.token_id, tag);
          const deadline = Date.now() + STEP_TIMEOUT;
          while (sent.length < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
          assert.equal(sent.length, want, `requests the browser sent from ${pageURL}: got ${sent.map((r) => r.method() + ' ' + r.url()).join(', ')}`);
          for (const req of sent.slice(from)) {
            const what = `${req.method()} ${new URL(req.url()).pathname} from ${pageURL} (${req.resourceType()})`;
            const resp = await req.response(); // null when the request failed (a blocked navigation)
            if (resp) assert.equal(resp.status(), 403, `${what}: got status ${resp.status()}, want 403`);
          }
        }
      } finally {
        await bctx.close();
        other.server.close();
      }
      const meta = await apiOK('GET', '/tokens/' + encodeURIComponent(victim.token_id), ADMIN, undefined, 200);
      assert.equal(meta.revoked, false, 'the token was not regenerated (its old value would be revoked)');
      const named = (await apiOK('GET', '/tokens?include_revoked=true', ADMIN, undefined, 200)).tokens.filter((t) => t.name === 'csrf-target');
      assert.equal(named.length, 1, `tokens named csrf-target: got ${named.length}, want 1`);
      const usersAfter = (await apiOK('GET', '/users', ADMIN, undefined, 200)).users.map((u) => u.username).sort();
      assert.deepEqual(usersAfter, usersBefore, 'no user was added');
    });

    await step('no console errors, CSP violations or outside requests', async () => {
      assert.deepEqual(problems, []);
    });
  } finally {
    await browser.close();
  }
}

try {
  await main();
} catch (e) {
  failed++;
  console.log('not ok - the browser could not be driven');
  console.log(String(e && e.stack ? e.stack : e).replace(/^/gm, '    '));
}
if (SHOTS && !failed) console.log(`screenshots written to ${SHOTS}`);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
