// People search as admin shows masked phone numbers only.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, loggedInPage, url } from '../lib/helpers.mjs';

const MASKED = /^\d{3}\*{4}\d{4}$/;
const ELEVEN_DIGITS = /\d{11}/;
// Queries to try until some people are listed (demo data is Chinese names).
const QUERIES = ['', '王', '李', '张', '刘', '陈', '杨', '赵', '黄', '周', '吴'];

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

/** Cells of table#people rows: [{phone: text|null, cells: [text]}]. */
async function readRows(page) {
  return page.locator('table#people tr.person').evaluateAll((rows) =>
    rows.map((tr) => {
      const phone = tr.querySelector('td.phone');
      return {
        phone: phone ? (phone.textContent || '').trim() : null,
        cells: Array.from(tr.querySelectorAll('td,th')).map((c) => (c.textContent || '').trim()),
        html: tr.innerHTML,
      };
    }),
  );
}

test('people search as admin shows masked phones only', { timeout: 120_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'admin');
  try {
    let rowsSeen = 0;
    let maskedSeen = 0;
    for (const q of QUERIES) {
      const path = q ? `/people?q=${encodeURIComponent(q)}` : '/people';
      const resp = await page.goto(url(path));
      assert.ok(resp.status() < 400, `GET ${path} answered ${resp.status()}`);
      const rows = await readRows(page);
      if (rows.length > 0) {
        assert.equal(await page.locator('table#people').count(), 1, `${path}: table#people`);
      }
      for (const row of rows) {
        rowsSeen += 1;
        assert.notEqual(row.phone, null, `${path}: a tr.person has no td.phone cell`);
        assert.ok(
          row.phone === '' || MASKED.test(row.phone),
          `${path}: td.phone shows "${row.phone}", expected /^\\d{3}\\*{4}\\d{4}$/ or empty`,
        );
        if (row.phone) maskedSeen += 1;
        for (const cell of row.cells) {
          assert.ok(!ELEVEN_DIGITS.test(cell.replace(/\s+/g, '')), `${path}: a cell shows 11 consecutive digits: "${cell}"`);
        }
        // Nothing hidden in attributes either (title=, data-*=, tel: links).
        assert.ok(!ELEVEN_DIGITS.test(row.html), `${path}: row markup contains 11 consecutive digits`);
      }
      if (rowsSeen >= 20 && maskedSeen > 0) break;
    }
    assert.ok(rowsSeen > 0, 'admin people search never listed a tr.person (tried /people and common surnames)');
    assert.ok(maskedSeen > 0, `no masked phone was shown in ${rowsSeen} rows (all td.phone empty)`);
  } finally {
    await context.close();
  }
});
