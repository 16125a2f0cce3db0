// Phone-sized viewport: no horizontal scrolling.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, loggedInPage, newContext, url, PHONE } from '../lib/helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const PHONE_OPTS = { viewport: PHONE };

async function scrollWidth(page) {
  return page.evaluate(() => document.documentElement.scrollWidth);
}

for (const username of ['admin', 'resident']) {
  test(`dashboard at 390x844 has no horizontal scroll (${username})`, { timeout: 60_000 }, async () => {
    const { context, page } = await loggedInPage(browser, username, PHONE_OPTS);
    try {
      assert.equal(new URL(page.url()).pathname, '/');
      await page.waitForLoadState('load');
      const w = await scrollWidth(page);
      assert.ok(w <= PHONE.width + 1, `${username}: dashboard scrollWidth ${w} > ${PHONE.width + 1}`);
    } finally {
      await context.close();
    }
  });
}

test('login page at 390x844 has no horizontal scroll', { timeout: 60_000 }, async () => {
  const context = await newContext(browser, PHONE_OPTS);
  try {
    const page = await context.newPage();
    await page.goto(url('/login'));
    await page.waitForLoadState('load');
    const w = await scrollWidth(page);
    assert.ok(w <= PHONE.width + 1, `login scrollWidth ${w} > ${PHONE.width + 1}`);
  } finally {
    await context.close();
  }
});
