// Points for riders and couriers (以积分享兑换) in a browser. The demo (demo/points.rs)
// gives the `rider` login a year of awards, a redemption last quarter and a correction.
// - `rider` on a phone: balance, history with reasons, catalogue; redeems 话费充值卡 —
//   the balance drops by its cost and the quarter is marked used; a second redemption
//   is refused (409) with a plain message and moves nothing.
// - `admin` on /rewards/admin: debits = credits for every asset, restocks 理发券 (out of
//   stock in the demo), downloads the awards CSV; bad input is a 4xx, never a 500;
//   `jy.official` reads without forms; `resident` gets 403.
// - `admin` on /rewards/honours confirms the riders' shortlist; the certificate prints
//   the rank-1 rider's name; confirming again is refused.
// Writes: one redemption by `rider` (no other test redeems), 5 units of 理发券, the
// riders' honours of this year.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  DESKTOP,
  PHONE,
  launchBrowser,
  loggedInPage,
  expectPageOk,
  expectErrorPage,
  submit,
  downloadCsv,
  url,
} from '../lib/helpers.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

async function balance(page) {
  return Number((await page.locator('#balance-value').innerText()).trim());
}

async function deltas(page) {
  return page
    .locator('#rewards-history li.history-line')
    .evaluateAll((els) => els.map((e) => ({ kind: e.dataset.kind, delta: Number(e.dataset.delta), text: e.innerText })));
}

test('the rider sees balance and history, redeems once, and a second redemption is refused', async () => {
  const { context, page } = await loggedInPage(browser, 'rider', { viewport: PHONE, isMobile: true, hasTouch: true });
  try {
    // The navigation leads to the page.
    await page.locator('#nav-rewards').click();
    await page.waitForURL((u) => u.pathname === '/rewards');
    const start = await balance(page);
    assert.ok(start >= 200, `the demo rider has points to spend: ${start}`);
    const quarter = page.locator('#quarter-status');
    assert.equal(await quarter.getAttribute('data-used'), 'no');
    assert.match(await quarter.innerText(), /本季度可兑换/);

    // The history explains the balance, with a reason for every line.
    const lines = await deltas(page);
    const kinds = new Set(lines.map((l) => l.kind));
    for (const k of ['award', 'redemption', 'correction']) assert.ok(kinds.has(k), `a ${k} line in the history`);
    if ((await page.locator('#rewards-history .small.muted').count()) === 0) {
      const sum = lines.reduce((s, l) => s + l.delta, 0);
      assert.equal(sum, start, 'the balance is the sum of the history');
    }
    const text = await page.locator('#rewards-history').innerText();
    assert.match(text, /哨兵上报被采纳/);
    assert.match(text, /保温箱/); // last quarter's redemption names its item
    assert.match(text, /重复上报/); // the correction gives its reason
    assert.match(text, /\d{4}-\d{2}-\d{2} \d{2}:\d{2}/);
    // Privacy: no phone or ID numbers on the page.
    assert.doesNotMatch(await page.locator('main').innerText(), /1[3-9]\d{9}|\d{17}[\dX]/);

    // The catalogue: five items of three organisations; 理发券 is out of stock.
    const items = page.locator('#rewards-catalogue li.rewards-item');
    assert.equal(await items.count(), 5);
    const haircut = items.filter({ hasText: '理发券' });
    assert.equal(await haircut.getAttribute('data-redeemable'), 'no');
    assert.match(await haircut.locator('.why-not').innerText(), /已兑完/);

    // Redeem the phone card.
    const card = items.filter({ hasText: '话费充值卡' });
    assert.equal(await card.getAttribute('data-redeemable'), 'yes');
    const cost = Number(await card.getAttribute('data-cost'));
    const stock = Number(await card.locator('.item-stock').innerText());
    const resp = await submit(page, card.locator('button.redeem-button'), '/rewards/redeem');
    assert.equal(resp.status(), 303);
    assert.match(await page.locator('#rewards-notice').innerText(), /兑换成功/);
    assert.equal(await balance(page), start - cost, 'the balance dropped by the cost');
    assert.equal(await quarter.getAttribute('data-used'), 'yes');
    assert.match(await quarter.innerText(), /本季度已兑换[\s\S]*话费充值卡/);
    const first = (await deltas(page))[0];
    assert.equal(first.kind, 'redemption');
    assert.equal(first.delta, -cost);
    const after = page.locator('#rewards-catalogue li.rewards-item').filter({ hasText: '话费充值卡' });
    assert.equal(Number(await after.locator('.item-stock').innerText()), stock - 1, 'one unit left the stock');

    // A second redemption this quarter is refused in plain words, and moves nothing.
    const helmet = page.locator('#rewards-catalogue li.rewards-item').filter({ hasText: '电动车头盔' });
    assert.equal(await helmet.getAttribute('data-redeemable'), 'no');
    const refused = await submit(page, helmet.locator('button.redeem-button'), '/rewards/redeem');
    assert.equal(refused.status(), 409);
    assert.match(await page.locator('#rewards-problem').innerText(), /每人每季度只能兑换一次/);
    assert.equal(await balance(page), start - cost);

    // It fits the phone, and the desk pages are not the rider's.
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `horizontal overflow of ${overflow}px on a phone`);
    await expectErrorPage(page, '/rewards/admin', 403);
    await expectErrorPage(page, '/rewards/honours', 403);
  } finally {
    await context.close();
  }
});

test('the desk: ledger totals balance, a restock, the awards CSV, bad input refused', async () => {
  const { context, page } = await loggedInPage(browser, 'admin', { viewport: DESKTOP, acceptDownloads: true });
  try {
    await page.locator('#nav-rewards-admin').click();
    await page.waitForURL((u) => u.pathname === '/rewards/admin');
    assert.equal(await page.locator('#fig-balanced .stat-value').getAttribute('data-balanced'), 'yes');
    const totals = await page
      .locator('#totals-table tbody tr[data-asset]')
      .evaluateAll((rows) => rows.map((r) => ({
        asset: r.dataset.asset,
        debits: Number(r.querySelector('.debits').textContent),
        credits: Number(r.querySelector('.credits').textContent),
        balances: Number(r.querySelector('.balances').textContent),
      })));
    const points = totals.find((t) => t.asset === 'points');
    assert.ok(points && points.credits > 1000, 'points were issued');
    for (const t of totals) {
      assert.equal(t.debits, t.credits, `${t.asset}: debits = credits`);
      assert.equal(t.balances, 0, `${t.asset}: balances sum to 0`);
    }
    // Rules with versions, the issuer, the chart, the latest awards.
    assert.ok((await page.locator('#rules-table tr[data-rule=good_rating]').count()) >= 2, 'good_rating has two versions');
    assert.match(await page.locator('#issuer-name').innerText(), /东胜区/);
    assert.equal(await page.locator('#rewards-chart svg').count(), 1);
    assert.ok((await page.locator('#latest-table tbody tr').count()) >= 10);

    // Restock the haircut vouchers the demo ran out of.
    const row = page.locator('#items-table tbody tr').filter({ hasText: '理发券' });
    const before = Number(await row.locator('.item-stock').innerText());
    await row.locator('input[name=units]').fill('5');
    const resp = await submit(page, row.locator('button[type=submit]'), '/rewards/admin/restock');
    assert.equal(resp.status(), 303);
    assert.match(await page.locator('#rewards-notice').innerText(), /已补货/);
    const restocked = page.locator('#items-table tbody tr').filter({ hasText: '理发券' });
    assert.equal(Number(await restocked.locator('.item-stock').innerText()), before + 5);
    // Still balanced after the restock.
    assert.equal(await page.locator('#fig-balanced .stat-value').getAttribute('data-balanced'), 'yes');

    // Bad input is a 4xx with words, never a 500.
    const csrf = await page.locator('#issuer-form input[name=csrf]').inputValue();
    const itemId = await restocked.getAttribute('data-item');
    const bad = await page.request.post(url('/rewards/admin/restock'), { form: { csrf, item_id: itemId, units: 'lots' } });
    assert.equal(bad.status(), 422);
    assert.match(await bad.text(), /补货数量须为正整数/);
    const unknown = await page.request.post(url('/rewards/admin/award'), {
      form: { csrf, person_id: '999999999', rule_code: 'good_rating', quality: 'good', event_ref: 'e2e:x', org_id: '1' },
    });
    assert.equal(unknown.status(), 422);
    const forged = await page.request.post(url('/rewards/admin/restock'), { form: { csrf: 'nope', item_id: itemId, units: '5' } });
    assert.equal(forged.status(), 403);

    // The awards CSV: the header and a year of awards.
    const { name, rows } = await downloadCsv(page, page.locator('#csv-awards'));
    assert.equal(name, 'points-awards.csv');
    assert.deepEqual(rows[0].slice(0, 5), ['at', 'award_id', 'event_ref', 'person_id', 'name']);
    assert.ok(rows.length > 500, `awards in the CSV: ${rows.length - 1}`);
    const ledger = await page.request.get(url('/rewards/admin/ledger.csv'));
    assert.equal(ledger.status(), 200);
    assert.match(await ledger.text(), /id,created_at,debit,credit,asset,amount,reason/);
  } finally {
    await context.close();
  }
  const official = await loggedInPage(browser, 'jy.official', { viewport: DESKTOP });
  try {
    await expectPageOk(official.page, '/rewards/admin');
    assert.equal(await official.page.locator('form.restock-form, #add-item-form, #award-form, #add-rule-form').count(), 0);
  } finally {
    await official.context.close();
  }
  const resident = await loggedInPage(browser, 'resident', { viewport: PHONE });
  try {
    await expectErrorPage(resident.page, '/rewards', 403);
    await expectErrorPage(resident.page, '/rewards/admin', 403);
  } finally {
    await resident.context.close();
  }
});

test('the year honours: the riders shortlist confirmed, its certificate printed', async () => {
  const { context, page } = await loggedInPage(browser, 'admin', { viewport: DESKTOP });
  // The demo's awards cover the last year: this year's ranking, unless the year has
  // only just begun (then last year's, as an official would confirm in January).
  const year = new Date(Date.now() - 60 * 86400e3).getFullYear();
  try {
    await expectPageOk(page, `/rewards/honours?year=${year}`);
    const section = page.locator('#honours-rider');
    const rows = section.locator('table.shortlist tbody tr[data-person]');
    assert.equal(await rows.count(), 10, 'a shortlist of ten');
    const points = (await rows.locator('td.points').allInnerTexts()).map(Number);
    assert.deepEqual(points, [...points].sort((a, b) => b - a), 'most points first');
    const top = (await rows.first().locator('td.person-name').innerText()).trim();
    assert.equal(await section.locator('input[name=person_id]:checked').count(), 3);
    assert.equal(await section.locator('input[name=title]').inputValue(), '先锋骑手');
    const resp = await submit(page, section.locator('button.confirm-button'), '/rewards/honours/confirm');
    assert.equal(resp.status(), 303);
    const confirmed = page.locator('#honours-rider .confirmed-list li');
    assert.equal(await confirmed.count(), 3);
    assert.match(await confirmed.first().innerText(), new RegExp(`先锋骑手[\\s\\S]*${top}`));
    // The form is gone once confirmed; a replayed confirmation is refused.
    assert.equal(await page.locator('#honours-rider form.confirm-form').count(), 0);
    const csrf = await page.locator('input[name=csrf]').first().inputValue();
    const again = await page.request.post(url('/rewards/honours/confirm'), {
      form: { csrf, year: String(year), category: 'rider', title: '先锋骑手', person_id: '1' },
    });
    assert.ok([409, 422].includes(again.status()), `a second confirmation answered ${again.status()}`);

    // The certificate: the name, the title, the number; printable without navigation.
    const link = confirmed.first().locator('a.certificate-link');
    await Promise.all([page.waitForURL(/\/rewards\/certificates\//), link.click()]);
    assert.match(await page.locator('h1').innerText(), /荣\s*誉\s*证\s*书/);
    assert.equal((await page.locator('#certificate-name').innerText()).trim(), top);
    assert.match(await page.locator('#certificate-title').innerText(), /先锋骑手/);
    assert.match(await page.locator('#certificate').innerText(), /-rider-001/);
    assert.match(await page.locator('#certificate-issuer').innerText(), /东胜区/);
    await page.emulateMedia({ media: 'print' });
    assert.equal(await page.locator('header.top').isVisible(), false, 'no navigation when printed');
    assert.equal(await page.locator('#certificate').isVisible(), true);
    await page.emulateMedia({ media: 'screen' });
    await expectErrorPage(page, '/rewards/certificates/2026-rider-999', 404);
    await expectErrorPage(page, '/rewards/honours?year=abc', 422);
  } finally {
    await context.close();
  }
});
