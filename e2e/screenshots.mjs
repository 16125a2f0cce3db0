// Screenshots of the main pages for the docs. Run by hand (not by CI):
//
//   LIANXIN_URL=http://127.0.0.1:18089 node e2e/screenshots.mjs [OUT_DIR]
//
// Logs in as the demo admin and writes PNGs into OUT_DIR (default: docs/images/
// at the repo root, created if missing). Needs a running `lianxin demo` server.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BASE_URL, DESKTOP, PHONE, launchBrowser, newContext, login, url, links,
} from './lib/helpers.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const outDir = path.resolve(process.argv[2] || process.env.SCREENSHOT_DIR || path.join(here, '..', 'docs', 'images'));

async function shot(page, name) {
  await page.waitForLoadState('load');
  const file = path.join(outDir, name);
  await page.screenshot({ path: file, fullPage: true });
  console.log(`wrote ${file}`);
}

async function go(page, p) {
  const resp = await page.goto(url(p));
  if (!resp || resp.status() >= 400) {
    console.warn(`warning: GET ${p} answered ${resp && resp.status()}`);
  }
}

async function main() {
  await mkdir(outDir, { recursive: true });
  console.log(`server ${BASE_URL}; writing screenshots to ${outDir}`);
  const browser = await launchBrowser();
  try {
    // Desktop.
    const desk = await newContext(browser, { viewport: DESKTOP });
    const page = await desk.newPage();
    await go(page, '/login');
    await shot(page, 'login.png');
    await login(page, 'admin');
    await shot(page, 'dashboard.png');

    await go(page, '/places');
    await shot(page, 'places.png');
    // A place detail: 九原区 if it can be found, else the first place link.
    await go(page, `/places?q=${encodeURIComponent('九原区')}`);
    let placeLinks = await links(page, 'a.place-link');
    if (placeLinks.length === 0) {
      await go(page, '/places');
      placeLinks = await links(page, 'a.place-link');
    }
    const place = placeLinks.find((l) => l.text.includes('九原区')) || placeLinks[0];
    if (place) {
      await go(page, new URL(place.href, url('/')).pathname);
      await shot(page, 'place-detail.png');
    } else {
      console.warn('warning: no a.place-link found; skipping place-detail.png');
    }

    await go(page, `/orgs?q=${encodeURIComponent('组织部')}`);
    await shot(page, 'orgs-search.png');

    await go(page, `/people?q=${encodeURIComponent('王')}`);
    if ((await page.locator('table#people tr.person').count()) === 0) await go(page, '/people');
    await shot(page, 'people-search.png');
    await desk.close();

    // Phone-sized dashboard.
    const phone = await newContext(browser, { viewport: PHONE });
    const ppage = await phone.newPage();
    await go(ppage, '/login');
    await login(ppage, 'admin');
    await shot(ppage, 'dashboard-phone.png');
    await phone.close();
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
