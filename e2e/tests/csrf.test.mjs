// CSRF: a POST to /logout without the csrf field must not log the user out.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, loggedInPage, url, pathOf, logoutCsrf, BASE_URL } from '../lib/helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

// Same-origin headers so that only the csrf field differs between the requests.
const HEADERS = { Origin: BASE_URL, Referer: `${BASE_URL}/` };

test('POST /logout without csrf answers 403 and keeps the session', { timeout: 60_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'admin');
  try {
    const noField = await page.request.post(url('/logout'), { form: {}, headers: HEADERS, maxRedirects: 0 });
    assert.equal(noField.status(), 403, `POST /logout without csrf answered ${noField.status()}`);

    const wrong = await page.request.post(url('/logout'), {
      form: { csrf: '0'.repeat(32) }, headers: HEADERS, maxRedirects: 0,
    });
    assert.equal(wrong.status(), 403, `POST /logout with a wrong csrf answered ${wrong.status()}`);

    // Still logged in.
    await page.goto(url('/'));
    assert.equal(pathOf(page), '/', 'after the forged POSTs / should still show the dashboard');
    assert.ok((await page.locator('#whoami').innerText()).trim().length > 0, '#whoami after forged POSTs');
  } finally {
    await context.close();
  }
});

test('POST /logout with the page csrf token does log out (control)', { timeout: 60_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'admin');
  try {
    const token = await logoutCsrf(page);
    assert.ok(token, 'the logout form should carry input[name=csrf]');
    const resp = await page.request.post(url('/logout'), { form: { csrf: token }, headers: HEADERS, maxRedirects: 0 });
    assert.ok(resp.status() < 400, `POST /logout with the csrf token answered ${resp.status()}`);
    await page.goto(url('/'));
    assert.equal(pathOf(page), '/login', 'after a real logout / should redirect to /login');
  } finally {
    await context.close();
  }
});

test('POST /logout from plain fetch with the session cookie but no csrf answers 403', { timeout: 60_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'jy.official');
  try {
    const cookies = await context.cookies(url('/'));
    assert.ok(cookies.length > 0, 'a session cookie should be set after login');
    const cookieHeader = cookies.map((c) => `${c.name}=${c.value}`).join('; ');
    const r = await fetch(url('/logout'), {
      method: 'POST',
      redirect: 'manual',
      headers: { ...HEADERS, Cookie: cookieHeader, 'Content-Type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    assert.equal(r.status, 403, `fetch POST /logout without csrf answered ${r.status}`);
    await page.goto(url('/'));
    assert.equal(pathOf(page), '/', 'session must survive the forged POST');
  } finally {
    await context.close();
  }
});
