// The compound's entries and exits (/gate/log) in a browser: the community worker
// sees the demo's week of scans at 开元社区 with the figures and the hour chart,
// changes the period, downloads the CSV, and reads the page on a phone; a resident
// may not open it. The demo's scans are synthetic (demo/gate.rs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  DESKTOP,
  PHONE,
  launchBrowser,
  loggedInPage,
  expectPageOk,
  expectErrorPage,
  url,
} from '../lib/helpers.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** The number in a figure tile. */
async function figure(page, id) {
  const text = (await page.locator(`#${id} .stat-value`).innerText()).trim();
  return text;
}

test('the compound sees its riders entries and exits with the figures, by period, as CSV', async () => {
  const { context, page } = await loggedInPage(browser, 'ky.worker', { viewport: DESKTOP });
  try {
    // 30 days hold the demo's whole synthetic week (7 days could cut a visit in two).
    await expectPageOk(page, '/gate/log?days=30');
    // The compound menu offers 开元社区 and its two gates.
    const option = page.locator('#gate-log-filter select[name=compound] option[selected]');
    assert.match(await option.innerText(), /开元社区/);
    const month = Number(await figure(page, 'gate-entries'));
    assert.ok(month > 0, `entries over 30 days: ${month}`);
    assert.equal(Number(await figure(page, 'gate-exits')), month, 'every synthetic rider left again');
    assert.match(await figure(page, 'gate-median'), /ms|秒/);
    assert.match(await figure(page, 'gate-first-try'), /%$/);
    // The hour chart and the list; no rider's name anywhere, only pseudonyms.
    assert.equal(await page.locator('#gate-by-hour svg').count(), 1);
    const rows = page.locator('#gate-log-table tbody tr');
    assert.ok((await rows.count()) > 10);
    const first = await rows.first().innerText();
    assert.match(first, /开元社区/);
    assert.match(first, /美团|饿了么/);
    assert.doesNotMatch(await page.locator('main').innerText(), /师傅|李明/);
    // A shorter period: fewer or as many entries.
    await page.selectOption('#gate-log-filter select[name=days]', '1');
    await Promise.all([page.waitForURL(/days=1/), page.click('#gate-log-filter button[type=submit]')]);
    const day = Number(await figure(page, 'gate-entries'));
    assert.ok(day <= month, `1 day ${day} <= 30 days ${month}`);
    // The CSV download has a header and the period's lines.
    const href = await page.locator('#gate-log-csv').getAttribute('href');
    const resp = await page.request.get(url(href));
    assert.equal(resp.status(), 200);
    assert.match(resp.headers()['content-type'], /text\/csv/);
    const lines = (await resp.text()).trim().split(/\r\n/);
    assert.match(lines[0], /time,gate,direction,outcome,pass,platform,building,took_ms/);
  } finally {
    await context.close();
  }
});

test('on a phone the page fits, and a resident may not open it', async () => {
  const { context, page } = await loggedInPage(browser, 'ky.worker', { viewport: PHONE });
  try {
    await expectPageOk(page, '/gate/log');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `horizontal overflow of ${overflow}px on a phone`);
  } finally {
    await context.close();
  }
  const resident = await loggedInPage(browser, 'resident', { viewport: PHONE });
  try {
    await expectErrorPage(resident.page, '/gate/log', 403);
  } finally {
    await resident.context.close();
  }
});
