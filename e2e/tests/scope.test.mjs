// Records outside an account's scope: not found by its searches, and 404 when
// opened directly by URL (URLs are taken from what admin can see).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { launchBrowser, loggedInPage, url, links, expectErrorPage } from '../lib/helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const pathname = (href) => new URL(href, url('/')).pathname;

/**
 * Among `candidates` (admin-visible {text, href}), find up to `want` records that
 * `page`'s account does not find when searching `listPath?q=<name>`.
 */
async function outOfScope(page, listPath, selector, candidates, want = 2) {
  const found = [];
  for (const c of candidates) {
    if (!c.text || !c.href) continue;
    const resp = await page.goto(url(`${listPath}?q=${encodeURIComponent(c.text)}`));
    assert.ok(resp.status() < 400, `GET ${listPath}?q=${c.text} answered ${resp.status()}`);
    const hits = (await links(page, selector)).map((l) => pathname(l.href));
    if (!hits.includes(pathname(c.href))) found.push(c);
    if (found.length >= want) break;
  }
  return found;
}

test('ky.grid1 cannot open people outside its grid (404)', { timeout: 180_000 }, async () => {
  const admin = await loggedInPage(browser, 'admin');
  let candidates;
  try {
    await admin.page.goto(url('/people'));
    const all = await links(admin.page, 'tr.person a[href*="/people/"]');
    assert.ok(all.length > 0, 'admin /people lists no person links (tr.person a[href*="/people/"])');
    // Later rows are more likely to lie outside the first grid.
    candidates = all.slice().reverse().slice(0, 15);
  } finally {
    await admin.context.close();
  }
  const grid = await loggedInPage(browser, 'ky.grid1');
  try {
    const outside = await outOfScope(grid.page, '/people', 'tr.person a[href*="/people/"]', candidates);
    assert.ok(outside.length > 0, `ky.grid1's people search finds every one of ${candidates.length} people admin sees`);
    for (const p of outside) {
      await expectErrorPage(grid.page, pathname(p.href), 404, `ky.grid1 opening ${p.text}`);
    }
  } finally {
    await grid.context.close();
  }
});

test('ky.worker cannot open organisations outside its community (404)', { timeout: 180_000 }, async () => {
  const admin = await loggedInPage(browser, 'admin');
  let candidates;
  try {
    await admin.page.goto(url('/orgs'));
    const all = await links(admin.page, 'a.org-link');
    assert.ok(all.length > 0, 'admin /orgs lists no a.org-link');
    candidates = all.slice(0, 15);
  } finally {
    await admin.context.close();
  }
  const worker = await loggedInPage(browser, 'ky.worker');
  try {
    const outside = await outOfScope(worker.page, '/orgs', 'a.org-link', candidates);
    assert.ok(outside.length > 0, `ky.worker's org search finds every one of ${candidates.length} organisations admin sees`);
    for (const o of outside) {
      await expectErrorPage(worker.page, pathname(o.href), 404, `ky.worker opening ${o.text}`);
    }
  } finally {
    await worker.context.close();
  }
});

test('jy.official cannot open places outside 九原区 (404)', { timeout: 120_000 }, async () => {
  const admin = await loggedInPage(browser, 'admin');
  let root;
  try {
    await admin.page.goto(url('/places'));
    const rootLink = (await links(admin.page, 'a.place-link'))[0];
    assert.ok(rootLink, 'admin /places has no a.place-link');
    root = rootLink;
  } finally {
    await admin.context.close();
  }
  const official = await loggedInPage(browser, 'jy.official');
  try {
    // The region root (内蒙古自治区) is an ancestor of 九原区, not inside its scope.
    assert.ok(root.text.includes('内蒙古自治区'), `admin root is "${root.text}"`);
    await expectErrorPage(official.page, pathname(root.href), 404, 'jy.official opening 内蒙古自治区');
  } finally {
    await official.context.close();
  }
});
