// Too many failed logins answer 429. Kept last (zz-) because it burns failure
// budget on the server's in-memory limiter; it uses a username of its own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, newContext, url, submitLogin } from '../lib/helpers.mjs';

const MAX_ATTEMPTS = 15;

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

test('repeated failed logins are throttled with 429', { timeout: 120_000 }, async () => {
  const context = await newContext(browser);
  try {
    const page = await context.newPage();
    const statuses = [];
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      await page.goto(url('/login'));
      const resp = await submitLogin(page, 'e2e-throttle-probe', `wrong-${i}`);
      statuses.push(resp.status());
      if (resp.status() === 429) break;
      assert.equal(resp.status(), 401, `failed login #${i + 1} answered ${resp.status()}`);
    }
    assert.equal(statuses.at(-1), 429, `no 429 after ${statuses.length} failed logins: ${statuses.join(',')}`);
  } finally {
    await context.close();
  }
});
