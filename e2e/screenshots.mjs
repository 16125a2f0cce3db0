// Screenshots of the main pages for the docs. Run by hand (not by CI):
//
//   LIANXIN_URL=http://127.0.0.1:18089 node e2e/screenshots.mjs [OUT_DIR]
//
// Logs in as the demo accounts and writes PNGs into OUT_DIR (default: docs/images/
// at the repo root, created if missing). Needs a running, fresh `lianxin demo` server
// (it submits a demand and ends an official's post). To refresh only some images,
// write to a temp folder and copy those.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { chromium } from 'playwright-core';
import { writeFakeCamera } from './lib/fake-camera.mjs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BASE_URL, DESKTOP, PHONE, CHROMIUM_ARGS, CHROMIUM_PATH, launchBrowser, newContext, login, url, links,
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
  if (process.env.SHOTS_ONLY === 'rewards') {
    // Only the points pages (docs/guide/rewards.md), on a fresh demo.
    try {
      await rewardsShots(browser);
    } finally {
      await browser.close();
    }
    return;
  }
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

    await loopShots(browser);
    await contactShots(browser);
    await communityShots(browser);
    await tiersShots(browser);
    await gateShots(browser);
    await rewardsShots(browser);
  } finally {
    await browser.close();
  }
}

/** The demand loop: the resident's form and tracking page on a phone, the worker's
 *  queue and a demand's page, the three-rate dashboard, the loop settings. */
async function loopShots(browser) {
  // A resident raises a demand from a phone and lands on the tracking page.
  const phone = await newContext(browser, { viewport: PHONE, isMobile: true, hasTouch: true });
  const rpage = await phone.newPage();
  await go(rpage, '/login');
  await login(rpage, 'resident');
  await go(rpage, '/submit');
  await shot(rpage, 'loop-submit-phone.png');
  const form = rpage.locator('form#submit-form');
  await form.locator('input[name=kind][value=help]').check();
  await form.locator('select[name=category]').selectOption('environment');
  await form.locator('select[name=place]').selectOption('150207.BYXL.KY');
  await form.locator('textarea[name=description]').fill('小区北门的路灯不亮，晚上回家看不清路。');
  await Promise.all([
    rpage.waitForURL((u) => u.pathname.startsWith('/t/')),
    form.locator('button[type=submit]').click(),
  ]);
  await shot(rpage, 'loop-tracking-phone.png');
  await go(rpage, '/repair');
  await shot(rpage, 'loop-repair-phone.png');
  await phone.close();

  // The community worker's queue and a demand that was reopened after a 不满意.
  const desk = await newContext(browser, { viewport: DESKTOP });
  const wpage = await desk.newPage();
  await go(wpage, '/login');
  await login(wpage, 'ky.worker');
  await go(wpage, '/demands');
  await shot(wpage, 'loop-queue.png');
  const reopened = wpage.locator('li.demand-row', { hasText: '电梯' }).first();
  if (await reopened.count()) {
    await go(wpage, new URL(await reopened.locator('a.demand-link').getAttribute('href'), url('/')).pathname);
    await shot(wpage, 'loop-demand.png');
  } else {
    console.warn('warning: no 电梯 demand in the queue; skipping loop-demand.png');
  }
  await desk.close();

  // The official's three-rate dashboard and the administrator's loop settings.
  const office = await newContext(browser, { viewport: DESKTOP });
  const opage = await office.newPage();
  await go(opage, '/login');
  await login(opage, 'jy.official');
  await go(opage, '/dashboard/rates?preset=year');
  await shot(opage, 'loop-rates.png');
  await office.close();
  const adm = await newContext(browser, { viewport: DESKTOP });
  const apage = await adm.newPage();
  await go(apage, '/login');
  await login(apage, 'admin');
  await go(apage, '/admin/loop');
  await shot(apage, 'loop-admin.png');
  await adm.close();
}

/** Contact points: the district view, a re-match with its proposed successors (after
 *  recording that 钱玉兰's post ends today), and the visit form on a phone. */
async function contactShots(browser) {
  const adm = await newContext(browser, { viewport: DESKTOP });
  const apage = await adm.newPage();
  await go(apage, '/login');
  await login(apage, 'admin');
  await go(apage, '/governance');
  await shot(apage, 'contact-governance.png');

  await go(apage, '/rematches');
  const qian = apage.locator('#post-change-person option', { hasText: '钱玉兰' });
  if (await qian.count()) {
    await apage.locator('#post-change-person').selectOption(await qian.getAttribute('value'));
    await Promise.all([apage.waitForEvent('load'), apage.locator('#post-change-submit').click()]);
  } else {
    console.warn('warning: 钱玉兰 is not offered on /rematches (not a fresh demo?)');
  }
  const row = apage.locator('#rematch-table tr[data-status=open]', { hasText: '开元社区' });
  const open = (await row.count()) ? row.first() : apage.locator('#rematch-table tr[data-status=open]').first();
  if (await open.count()) {
    await go(apage, new URL(await open.locator('a').getAttribute('href'), url('/')).pathname);
    const proposed = await apage.locator('#candidates li[data-candidate]').count();
    if (proposed === 0) console.warn('warning: the re-match proposes no successors');
  } else {
    console.warn('warning: no open re-match; capturing the queue instead');
  }
  await shot(apage, 'contact-rematch.png');
  await adm.close();

  const phone = await newContext(browser, { viewport: PHONE, isMobile: true, hasTouch: true });
  const ppage = await phone.newPage();
  await go(ppage, '/login');
  await login(ppage, 'jy.official');
  await go(ppage, '/visits/new');
  await shot(ppage, 'contact-visit-phone.png');
  await phone.close();
}

/** Community work: the household-visit coverage heat table (as admin, every community
 *  with grids). */
async function communityShots(browser) {
  const adm = await newContext(browser, { viewport: DESKTOP });
  const apage = await adm.newPage();
  await go(apage, '/login');
  await login(apage, 'admin');
  await go(apage, '/coverage');
  if ((await apage.locator('section.community-coverage').count()) === 0) {
    console.warn('warning: /coverage shows no community');
  }
  await shot(apage, 'community-coverage.png');
  await adm.close();
}

/** Organisation tiers: the board of the demo's year, with the lagging branch's
 *  evidence opened. */
async function tiersShots(browser) {
  const adm = await newContext(browser, { viewport: DESKTOP });
  const apage = await adm.newPage();
  await go(apage, '/login');
  await login(apage, 'admin');
  await go(apage, '/tiers?year=2026');
  const lagging = apage.locator('#tier-lagging details.tier-org', { hasText: '二道沙河西村党支部' });
  if (await lagging.count()) {
    await lagging.first().evaluate((d) => { d.open = true; });
  } else {
    console.warn('warning: 二道沙河西村党支部 is not in the lagging column');
  }
  await shot(apage, 'tiers-board.png');
  await adm.close();
}


/** The gate pass: the rider's phone with its live QR, the gate's tablet after it
 *  scanned that QR through a fake camera, and the compound's entries and exits. */
async function gateShots(browser) {
  const rider = await newContext(browser, { viewport: PHONE });
  const rpage = await rider.newPage();
  await go(rpage, '/login');
  await login(rpage, 'rider');
  await go(rpage, '/pass');
  await rpage.locator('#pass-qr[data-qr^="LX1:"]').waitFor({ timeout: 20_000 });
  await shot(rpage, 'gate-pass-phone.png');
  const dir = await mkdtemp(path.join(tmpdir(), 'lianxin-shots-'));
  const camera = path.join(dir, 'qr.y4m');
  await writeFakeCamera(await rpage.locator('#pass-qr svg').screenshot(), camera);
  await rider.close();
  const tablet = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
      `--use-file-for-fake-video-capture=${camera}`],
  });
  try {
    const gctx = await newContext(tablet, { viewport: { width: 1024, height: 900 } });
    const gpage = await gctx.newPage();
    await go(gpage, '/login');
    await login(gpage, 'gate');
    await go(gpage, '/gate/scan');
    await gpage.locator('#gate-result[data-outcome]').waitFor({ timeout: 30_000 });
    await shot(gpage, 'gate-scan-pass.png');
  } finally {
    await tablet.close();
    await rm(dir, { recursive: true, force: true });
  }
  const wy = await newContext(browser, { viewport: DESKTOP });
  const wpage = await wy.newPage();
  await go(wpage, '/login');
  await login(wpage, 'ky.worker');
  await go(wpage, '/gate/log');
  await shot(wpage, 'gate-log.png');
  await wy.close();
}

/** Points (以积分享兑换): the rider's phone, the organisation's desk, and a
 *  certificate after the riders' honours are confirmed (this writes the honours). */
async function rewardsShots(browser) {
  const phone = await newContext(browser, { viewport: PHONE, isMobile: true, hasTouch: true });
  const rpage = await phone.newPage();
  await go(rpage, '/login');
  await login(rpage, 'rider');
  await go(rpage, '/rewards');
  await rpage.setViewportSize({ width: PHONE.width, height: 1500 });
  await rpage.screenshot({ path: path.join(outDir, 'rewards-phone.png'), fullPage: false });
  console.log(`wrote ${path.join(outDir, 'rewards-phone.png')}`);
  await phone.close();
  const desk = await newContext(browser, { viewport: DESKTOP });
  const page = await desk.newPage();
  await go(page, '/login');
  await login(page, 'admin');
  await go(page, '/rewards/admin');
  // The top of the desk: figures, totals, exports and the start of the chart.
  await page.setViewportSize({ width: DESKTOP.width, height: 1100 });
  await page.screenshot({ path: path.join(outDir, 'rewards-admin.png'), fullPage: false });
  console.log(`wrote ${path.join(outDir, 'rewards-admin.png')}`);
  await page.setViewportSize(DESKTOP);
  await go(page, '/rewards/honours');
  const confirm = page.locator('#honours-rider button.confirm-button');
  if ((await confirm.count()) === 1) {
    await Promise.all([page.waitForEvent('load'), confirm.click()]);
  }
  const cert = page.locator('#honours-rider a.certificate-link').first();
  if ((await cert.count()) === 1) {
    await Promise.all([page.waitForEvent('load'), cert.click()]);
    await page.setViewportSize({ width: 1123, height: 794 });
    await page.emulateMedia({ media: 'print' });
    await shot(page, 'rewards-certificate.png');
  } else {
    console.warn('warning: no certificate link on /rewards/honours');
  }
  await desk.close();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
