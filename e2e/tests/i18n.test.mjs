// Chinese first, with an English switch that a cookie remembers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, loggedInPage, url, navText, pathOf } from '../lib/helpers.mjs';

const ZH = ['首页', '地点', '组织', '人员'];
const EN = ['Home', 'Places', 'Organisations', 'People'];

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

async function htmlLang(page) {
  return page.locator('html').getAttribute('lang');
}

/** Click a language link and wait (briefly) for the page's lang to become `want`. */
async function switchLang(page, id, want) {
  await page.locator(`a#${id}`).click();
  await page.waitForLoadState('load');
  await page
    .waitForFunction((w) => document.documentElement.lang === w, want, { timeout: 10_000 })
    .catch(() => {});
}

test('the English switch changes html[lang] and nav labels, and survives a reload', { timeout: 120_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'admin');
  try {
    // Default: Chinese.
    assert.equal(await htmlLang(page), 'zh-CN', 'default html[lang]');
    let nav = await navText(page);
    for (const label of ZH) assert.ok(nav.includes(label), `Chinese nav should include ${label}: "${nav}"`);

    // Switch to English.
    await switchLang(page, 'lang-en', 'en');
    assert.equal(await htmlLang(page), 'en', 'html[lang] after clicking a#lang-en');
    nav = await navText(page);
    for (const label of EN) assert.ok(nav.includes(label), `English nav should include ${label}: "${nav}"`);
    for (const label of ZH) assert.ok(!nav.includes(label), `English nav should not include ${label}: "${nav}"`);
    assert.notEqual(pathOf(page), '/login', 'switching language must not log out');

    // Survives a reload and other pages.
    await page.reload();
    assert.equal(await htmlLang(page), 'en', 'html[lang] after reload');
    nav = await navText(page);
    for (const label of EN) assert.ok(nav.includes(label), `nav after reload should include ${label}: "${nav}"`);
    const resp = await page.goto(url('/places'));
    assert.ok(resp.status() < 400, `/places answered ${resp.status()}`);
    assert.equal(await htmlLang(page), 'en', 'html[lang] on /places after switching');

    // And back to Chinese.
    await switchLang(page, 'lang-zh', 'zh-CN');
    assert.equal(await htmlLang(page), 'zh-CN', 'html[lang] after clicking a#lang-zh');
    nav = await navText(page);
    for (const label of ZH) assert.ok(nav.includes(label), `nav after switching back should include ${label}: "${nav}"`);
    await page.reload();
    assert.equal(await htmlLang(page), 'zh-CN', 'html[lang] after switching back and reloading');
  } finally {
    await context.close();
  }
});

test('a fresh session (no language cookie) is Chinese', { timeout: 60_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'ky.worker', { locale: 'en-US' });
  try {
    assert.equal(await htmlLang(page), 'zh-CN');
    const nav = await navText(page);
    assert.ok(nav.includes('首页'), `nav should be Chinese: "${nav}"`);
  } finally {
    await context.close();
  }
});
