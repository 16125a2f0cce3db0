// Every demo login: lands on /, nav matches the role, every page the role may
// open renders, the role's scope is enforced, and logging out works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEMO_ACCOUNTS, launchBrowser, newContext, loggedInPage, login, url, pathOf, logout,
  expectPageOk, expectErrorPage, links, searchPlaces,
} from '../lib/helpers.mjs';

// Expected place-tree root (a substring of the root's a.place-link text), and
// place names that must NOT appear as links on that account's /places page.
const PLACE_ROOT = {
  'admin': { root: '内蒙古自治区', notListed: [] },
  'jy.official': { root: '九原区', notListed: ['内蒙古自治区', '包头市', '赤峰市'] },
  'ky.worker': { root: '开元社区', notListed: ['内蒙古自治区', '九原区', '白音席勒街道'] },
  'ky.grid1': { root: '第一网格', notListed: ['内蒙古自治区', '九原区', '白音席勒街道'] },
};

// Accounts whose place scope excludes 赤峰市 (so its page must answer 404).
const OUTSIDE_CHIFENG = new Set(['jy.official', 'ky.worker', 'ky.grid1']);

const UNIT_ORG = '九原区委组织部';

let browser;
/** href of 赤峰市's place page, as found by admin (filled in by before()). */
let chifengHref = null;
let chifengError = null;

before(async () => {
  browser = await launchBrowser();
  // Find 赤峰市's place page as admin, for the out-of-scope checks.
  const { context, page } = await loggedInPage(browser, 'admin');
  try {
    const found = await searchPlaces(page, '赤峰');
    const hit = found.find((l) => l.text.includes('赤峰市'));
    if (hit && hit.href) chifengHref = new URL(hit.href, url('/')).pathname;
    else chifengError = `admin's /places?q=赤峰 has no a.place-link containing 赤峰市 (got ${JSON.stringify(found.slice(0, 5))})`;
  } catch (e) {
    chifengError = `looking up 赤峰市 as admin failed: ${e.message}`;
  } finally {
    await context.close();
  }
});

after(async () => { await browser?.close(); });

function parseNumber(text) {
  const t = text.replace(/[\s,，]/g, '');
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : NaN;
}

async function checkNav(page, account) {
  const nav = page.locator('nav#main-nav');
  assert.equal(await nav.count(), 1, `${account.username}: nav#main-nav`);
  const whoami = (await page.locator('#whoami').innerText()).trim();
  assert.ok(whoami.length > 0, `${account.username}: #whoami is empty`);
  assert.equal(await page.locator('#logout').count(), 1, `${account.username}: #logout`);
  assert.equal(await page.locator('a#lang-en').count(), 1, `${account.username}: a#lang-en`);
  assert.equal(await page.locator('a#lang-zh').count(), 1, `${account.username}: a#lang-zh`);
  for (const [id, href] of [['nav-places', '/places'], ['nav-orgs', '/orgs'], ['nav-people', '/people']]) {
    const a = page.locator(`a#${id}`);
    if (account.registry) {
      assert.equal(await a.count(), 1, `${account.username} should have a#${id}`);
      const got = new URL(await a.getAttribute('href'), url('/')).pathname;
      assert.equal(got, href, `${account.username}: a#${id} should point to ${href}`);
    } else {
      assert.equal(await a.count(), 0, `${account.username} must not have a#${id}`);
    }
  }
}

async function checkDashboard(page, account) {
  await expectPageOk(page, '/', `${account.username} dashboard`);
  if (account.registry) {
    assert.equal(await page.locator('#stats').count(), 1, `${account.username}: dashboard #stats`);
    const values = await page.locator('#stats .stat .stat-value').allInnerTexts();
    assert.ok(values.length >= 1, `${account.username}: #stats has no .stat .stat-value`);
    for (const v of values) {
      assert.ok(!Number.isNaN(parseNumber(v)), `${account.username}: .stat-value "${v}" is not a number`);
    }
    if (account.username === 'admin') {
      assert.ok(values.some((v) => parseNumber(v) > 0), `admin: all stat values are 0 (${values.join(', ')})`);
    }
    assert.ok((await page.locator('svg.chart').count()) >= 1, `${account.username}: dashboard has no svg.chart`);
  } else {
    assert.equal(await page.locator('#account-card').count(), 1, `${account.username}: dashboard #account-card`);
    assert.equal(await page.locator('#stats .stat').count(), 0, `${account.username}: must not see registry #stats`);
  }
}

async function checkPlaces(page, account) {
  await expectPageOk(page, '/places', `${account.username} /places`);
  const placeLinks = await links(page, 'a.place-link');
  const expected = PLACE_ROOT[account.username];
  let detail = null;
  if (expected) {
    assert.ok(placeLinks.length >= 1, `${account.username}: /places shows no a.place-link`);
    assert.ok(
      placeLinks[0].text.includes(expected.root),
      `${account.username}: /places root should be ${expected.root}, first a.place-link is "${placeLinks[0].text}"`,
    );
    for (const name of expected.notListed) {
      const bad = placeLinks.find((l) => l.text.includes(name) && !l.text.includes(expected.root));
      assert.ok(!bad, `${account.username}: /places lists "${bad && bad.text}", outside its scope`);
    }
    detail = placeLinks[0];
  } else if (placeLinks.length > 0) {
    detail = placeLinks[0];
  }
  if (detail) {
    const path = new URL(detail.href, url('/')).pathname;
    assert.match(path, /^\/places\/[^/]+$/, `${account.username}: place link href ${detail.href}`);
    await expectPageOk(page, path, `${account.username} place detail`);
    const h1 = (await page.locator('h1').first().innerText()).trim();
    if (expected) {
      assert.ok(h1.includes(expected.root), `${account.username}: ${path} h1 "${h1}" should name ${expected.root}`);
    }
    assert.ok((await page.locator('nav.breadcrumbs').count()) >= 1, `${account.username}: ${path} has no nav.breadcrumbs`);
    assert.equal(await page.locator('#responsible').count(), 1, `${account.username}: ${path} has no #responsible`);
  }
}

async function checkOrgs(page, account) {
  await expectPageOk(page, '/orgs', `${account.username} /orgs`);
  let orgLinks = await links(page, 'a.org-link');
  if (account.username === 'admin' || account.username === 'unit.staff') {
    await expectPageOk(page, `/orgs?q=${encodeURIComponent('组织部')}`, `${account.username} /orgs?q=组织部`);
    orgLinks = await links(page, 'a.org-link');
    const hit = orgLinks.find((l) => l.text.includes(UNIT_ORG));
    assert.ok(hit, `${account.username}: /orgs?q=组织部 should find ${UNIT_ORG} (got ${JSON.stringify(orgLinks.map((l) => l.text))})`);
    orgLinks = [hit];
  }
  if (orgLinks.length > 0) {
    const path = new URL(orgLinks[0].href, url('/')).pathname;
    assert.match(path, /^\/orgs\/[^/]+$/, `${account.username}: org link href ${orgLinks[0].href}`);
    await expectPageOk(page, path, `${account.username} org detail`);
    if (orgLinks[0].text.includes(UNIT_ORG)) {
      const h1 = (await page.locator('h1').first().innerText()).trim();
      assert.ok(h1.includes(UNIT_ORG), `${account.username}: ${path} h1 "${h1}" should name ${UNIT_ORG}`);
    }
  }
}

async function checkPeople(page, account) {
  await expectPageOk(page, '/people', `${account.username} /people`);
  const personLinks = await links(page, 'tr.person a[href*="/people/"]');
  if (personLinks.length > 0) {
    const path = new URL(personLinks[0].href, url('/')).pathname;
    await expectPageOk(page, path, `${account.username} person detail`);
  }
}

for (const account of DEMO_ACCOUNTS) {
  test(`demo login ${account.username} (${account.role})`, { timeout: 180_000 }, async () => {
    const context = await newContext(browser);
    try {
      const page = await context.newPage();
      await page.goto(url('/login'));
      await login(page, account.username);
      assert.equal(pathOf(page), '/', `${account.username}: should land on /`);
      await checkNav(page, account);
      await checkDashboard(page, account);

      if (account.registry) {
        await checkPlaces(page, account);
        await checkOrgs(page, account);
        await checkPeople(page, account);
      } else {
        await expectErrorPage(page, '/places', 403, `${account.username} /places`);
        await expectErrorPage(page, '/people', 403, `${account.username} /people`);
        await expectErrorPage(page, '/orgs', 403, `${account.username} /orgs`);
      }

      // Role-specific scope checks.
      if (account.username === 'admin') {
        const found = await searchPlaces(page, '赤峰');
        assert.ok(found.some((l) => l.text.includes('赤峰市')), 'admin: /places?q=赤峰 should find 赤峰市');
      }
      if (account.username === 'ky.worker') {
        const found = await searchPlaces(page, '赤峰');
        assert.equal(found.length, 0, `ky.worker: /places?q=赤峰 should find nothing, got ${JSON.stringify(found)}`);
      }
      if (OUTSIDE_CHIFENG.has(account.username)) {
        assert.ok(chifengHref, chifengError || 'no 赤峰市 URL from admin');
        await expectErrorPage(page, chifengHref, 404, `${account.username} opening 赤峰市`);
      }

      // Log out: back to the login page, and / redirects there.
      await page.goto(url('/'));
      await logout(page);
      await page.goto(url('/'));
      assert.equal(pathOf(page), '/login', `${account.username}: after logout / should redirect to /login`);
    } finally {
      await context.close();
    }
  });
}
