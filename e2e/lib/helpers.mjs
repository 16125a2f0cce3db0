// Shared helpers for the Lianxin browser end-to-end tests.
// Not a test file: node --test only picks up tests/*.test.mjs.
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

export const BASE_URL = (process.env.LIANXIN_URL || 'http://127.0.0.1:18089').replace(/\/+$/, '');
export const DEMO_PASSWORD = 'lianxin-demo';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Role classes of the demo accounts (see the page contract). */
export const REGISTRY_ROLES = new Set(['admin', 'official', 'community_worker', 'grid_worker', 'unit_staff']);

/** The 8 demo logins. `registry` = may see /places, /orgs, /people. */
export const DEMO_ACCOUNTS = [
  { username: 'admin', role: 'admin', registry: true },
  { username: 'jy.official', role: 'official', registry: true },
  { username: 'ky.worker', role: 'community_worker', registry: true },
  { username: 'ky.grid1', role: 'grid_worker', registry: true },
  { username: 'unit.staff', role: 'unit_staff', registry: true },
  { username: 'resident', role: 'resident', registry: false },
  { username: 'rider', role: 'rider', registry: false },
  { username: 'gate', role: 'gate_device', registry: false },
];

export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

/** Absolute URL for a path on the server under test. */
export function url(path = '/') {
  return new URL(path, BASE_URL + '/').toString();
}

/** Path (plus query) of a page's current URL. */
export function pathOf(page) {
  const u = new URL(page.url());
  return u.pathname;
}

/** Launch the system Chromium. Never downloads a browser. */
export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true });
}

/** A fresh, isolated browser context (own cookies) with sane timeouts. */
export async function newContext(browser, { viewport = DESKTOP, ...rest } = {}) {
  const context = await browser.newContext({ viewport, locale: 'zh-CN', ...rest });
  context.setDefaultTimeout(15_000);
  context.setDefaultNavigationTimeout(20_000);
  return context;
}

/** Open a page at `path` and return [page, response]. */
export async function open(context, path) {
  const page = await context.newPage();
  const resp = await page.goto(url(path));
  return [page, resp];
}

/**
 * Fill in and submit the login form. Returns the response of the POST /login
 * (a redirect on success, 401 on a wrong password, 429 when throttled).
 * The page is left on whatever the browser landed on.
 */
export async function submitLogin(page, username, password = DEMO_PASSWORD) {
  if (pathOf(page) !== '/login') {
    const r = await page.goto(url('/login'));
    assert.ok(r, 'GET /login gave no response');
    assert.ok(r.status() < 400, `GET /login answered ${r.status()}`);
  }
  const form = page.locator('form#login-form');
  await form.locator('input[name=username]').fill(username);
  await form.locator('input[name=password]').fill(password);
  const [resp] = await Promise.all([
    page.waitForResponse(
      (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/login',
    ),
    form.locator('button[type=submit]').click(),
  ]);
  await page.waitForLoadState('domcontentloaded');
  return resp;
}

/** Log in and assert that the browser lands on `/`. */
export async function login(page, username, password = DEMO_PASSWORD) {
  const resp = await submitLogin(page, username, password);
  assert.ok(
    resp.status() < 400,
    `login as ${username}: POST /login answered ${resp.status()}`,
  );
  await page.waitForURL((u) => u.pathname === '/', { timeout: 15_000 });
  await page.waitForLoadState('domcontentloaded');
  return resp;
}

/** Click the logout button and wait for the resulting navigation. */
export async function logout(page) {
  const btn = page.locator('#logout');
  assert.equal(await btn.count(), 1, 'there should be exactly one #logout control');
  await Promise.all([
    page.waitForResponse(
      (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/logout',
    ),
    btn.click(),
  ]);
  await page.waitForLoadState('domcontentloaded');
}

/** New context + page, logged in as `username`, sitting on `/`. */
export async function loggedInPage(browser, username, opts = {}) {
  const context = await newContext(browser, opts);
  const page = await context.newPage();
  await page.goto(url('/login'));
  await login(page, username);
  return { context, page };
}

/** Navigate and assert the page renders: status < 400 and an h1 is present. */
export async function expectPageOk(page, path, label = path) {
  const resp = await page.goto(url(path));
  assert.ok(resp, `${label}: no response`);
  assert.ok(resp.status() < 400, `${label}: GET ${path} answered ${resp.status()}, expected < 400`);
  const h1 = page.locator('h1');
  assert.ok((await h1.count()) >= 1, `${label}: GET ${path} has no <h1>`);
  const text = (await h1.first().innerText()).trim();
  assert.ok(text.length > 0, `${label}: GET ${path} has an empty <h1>`);
  return resp;
}

/** Navigate and assert an error status with an `.error` element on the page. */
export async function expectErrorPage(page, path, status, label = path) {
  const resp = await page.goto(url(path));
  assert.ok(resp, `${label}: no response`);
  assert.equal(resp.status(), status, `${label}: GET ${path} answered ${resp.status()}, expected ${status}`);
  assert.ok(
    (await page.locator('.error').count()) >= 1,
    `${label}: the ${status} page for ${path} has no .error element`,
  );
  return resp;
}

/** Texts and hrefs of all `a.place-link` (or other selector) on the page. */
export async function links(page, selector) {
  return page.locator(selector).evaluateAll((els) =>
    els.map((a) => ({ text: (a.textContent || '').trim(), href: a.getAttribute('href') })),
  );
}

/** Texts of the nav links, in document order. */
export async function navText(page) {
  return (await page.locator('nav#main-nav').innerText()).replace(/\s+/g, ' ').trim();
}

/** Search places as the page's user and return the matching links. */
export async function searchPlaces(page, q) {
  const resp = await page.goto(url(`/places?q=${encodeURIComponent(q)}`));
  assert.ok(resp && resp.status() < 400, `GET /places?q=${q} answered ${resp && resp.status()}`);
  return links(page, 'a.place-link');
}

/** Read the hidden csrf token out of the logout form. */
export async function logoutCsrf(page) {
  const input = page.locator('form:has(#logout) input[name=csrf], #logout input[name=csrf]');
  if ((await input.count()) > 0) return input.first().inputValue();
  // #logout may be the form itself or a button inside it.
  return page.locator('#logout').evaluate((el) => {
    const form = el.tagName === 'FORM' ? el : el.closest('form');
    const field = form && form.querySelector('input[name=csrf]');
    return field ? field.value : null;
  });
}

/**
 * Click a form's submit button and wait for the page the POST leads to (after any
 * redirect). Returns the POST's own response (303 on success, 4xx when refused).
 */
export async function submit(page, button, path) {
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === path),
    page.waitForEvent('load'),
    button.click(),
  ]);
  return resp;
}

/** Navigate and assert a 200 answer. */
export async function goOk(page, path) {
  const resp = await page.goto(url(path));
  assert.ok(resp, `GET ${path}: no response`);
  assert.equal(resp.status(), 200, `GET ${path} answered ${resp.status()}`);
  return resp;
}

/** The page's horizontal extent (more than the viewport = sideways scrolling). */
export async function scrollWidth(page) {
  return page.evaluate(() => document.documentElement.scrollWidth);
}

/** Minimal CSV reader (RFC 4180 quotes), for the exports. */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i++; } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field); rows.push(row); row = []; field = '';
    } else field += c;
  }
  if (field !== '' || row.length) { row.push(field); rows.push(row); }
  return rows;
}

/**
 * Click a download link and read what arrives: asserts a UTF-8 BOM and returns
 * { name, rows } (blank rows dropped). The context needs `acceptDownloads: true`.
 */
export async function downloadCsv(page, link) {
  const { readFile } = await import('node:fs/promises');
  const [dl] = await Promise.all([page.waitForEvent('download'), link.click()]);
  const bytes = await readFile(await dl.path());
  assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], `${dl.suggestedFilename()} starts with a UTF-8 BOM`);
  const rows = parseCsv(bytes.toString('utf8').replace(/^\uFEFF/, '')).filter((r) => r.some((c) => c !== ''));
  return { name: dl.suggestedFilename(), rows };
}
