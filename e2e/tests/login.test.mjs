// The login page: Chinese by default, and a wrong password shows an error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, url, submitLogin, pathOf } from '../lib/helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('login page renders in Chinese with the login form', { timeout: 60_000 }, async () => {
  const context = await newContext(browser);
  try {
    const page = await context.newPage();
    const resp = await page.goto(url('/login'));
    assert.equal(resp.status(), 200);
    assert.equal(await page.locator('html').getAttribute('lang'), 'zh-CN');
    const body = await page.locator('body').innerText();
    assert.ok(body.includes('登录'), 'login page should contain 登录');
    const form = page.locator('form#login-form');
    assert.equal(await form.count(), 1, 'form#login-form');
    assert.equal(await form.locator('input[name=username]').count(), 1, 'input[name=username]');
    assert.equal(await form.locator('input[name=password]').count(), 1, 'input[name=password]');
    assert.equal(await form.locator('input[name=password]').getAttribute('type'), 'password');
    const csrf = form.locator('input[name=csrf]');
    assert.equal(await csrf.count(), 1, 'hidden input[name=csrf]');
    assert.equal(await csrf.getAttribute('type'), 'hidden');
    assert.ok((await csrf.inputValue()).length >= 16, 'csrf token should be non-trivial');
    assert.equal(await form.locator('button[type=submit]').count(), 1, 'button[type=submit]');
    assert.equal(await page.locator('.error').count(), 0, 'a fresh login page shows no .error');
  } finally {
    await context.close();
  }
});

test('a wrong password re-renders the form with .error and status 401', { timeout: 60_000 }, async () => {
  const context = await newContext(browser);
  try {
    const page = await context.newPage();
    await page.goto(url('/login'));
    const resp = await submitLogin(page, 'admin', 'definitely-not-the-password');
    assert.equal(resp.status(), 401, `POST /login with a bad password answered ${resp.status()}`);
    assert.ok((await page.locator('.error').count()) >= 1, 'the re-rendered page should show .error');
    assert.equal(await page.locator('form#login-form').count(), 1, 'the login form is shown again');
    assert.notEqual(pathOf(page), '/', 'must not land on the dashboard');
    // Still not logged in: / sends us back to /login.
    await page.goto(url('/'));
    assert.equal(pathOf(page), '/login');
  } finally {
    await context.close();
  }
});
