// The demand closed loop (收集—研判—落实—反馈) in a real browser: a resident submits
// with a photo, a community worker assesses, assigns, starts and answers, the
// resident's tracking page follows live (server-sent events, no reload), a 不满意
// rating reopens the demand, a second answer is rated 满意 and the demand closes.
// Also: the repair form goes to the property company, the three-rate dashboard and
// its exports, routing rules in the loop settings, phone layout, and bad input.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import zlib from 'node:zlib';
import {
  launchBrowser, newContext, loggedInPage, url, PHONE, BASE_URL,
} from '../lib/helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const KY = '150207.BYXL.KY';
const KY_PARTY = '白音席勒街道开元社区党委';
const KY_PROPERTY = '开元社区物业服务中心（示例）';

// ----- a small PNG made here: 8×8 pixels, red -----
function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
function chunk(type, data) {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function tinyPng(size = 8) {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(size, 0);
  ihdr.writeUInt32BE(size, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(size * 3, Buffer.from([0xb7, 0x1c, 0x1c]))]);
  const raw = Buffer.concat(Array.from({ length: size }, () => row));
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A description unique to this run, so the queue row can be found. */
function unique(text) {
  return `${text}（测试 ${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}）`;
}

/** The token of a tracking page's URL. */
function tokenOf(page) {
  const m = new URL(page.url()).pathname.match(/^\/t\/([A-Za-z0-9_-]+)$/);
  assert.ok(m, `not a tracking page: ${page.url()}`);
  return m[1];
}

/** Fill and send the demand form; returns the POST's response. */
async function submitDemand(page, { kind = 'help', category = 'environment', place = KY, description, photo } = {}) {
  const form = page.locator('form#submit-form');
  await form.locator(`input[name=kind][value=${kind}]`).check();
  await form.locator('select[name=category]').selectOption(category);
  await form.locator('select[name=place]').selectOption(place);
  await form.locator('textarea[name=description]').fill(description);
  if (photo) await form.locator('input[name=photos]').setInputFiles(photo);
  const [resp] = await Promise.all([
    page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/submit'),
    form.locator('button[type=submit]').click(),
  ]);
  await page.waitForLoadState('domcontentloaded');
  return resp;
}

/** Take a step on the demand page through its form and wait for the page after it. */
async function act(page, action, fill = async () => {}) {
  const form = page.locator(`form#act-${action}`);
  assert.equal(await form.count(), 1, `the demand page should offer ${action} (url ${page.url()})`);
  await page.locator(`details#action-${action}`).evaluate((d) => { d.open = true; });
  await fill(form);
  await Promise.all([
    page.waitForURL((u) => u.searchParams.get('done') === action),
    form.locator('button[type=submit]').click(),
  ]);
  await page.waitForLoadState('domcontentloaded');
}

/** The demand number a tracking page shows. */
async function demandId(page) {
  const id = (await page.locator('h1 .muted').innerText()).replace('#', '').trim();
  assert.match(id, /^\d+$/);
  return id;
}

async function statusText(page) {
  return (await page.locator('#status').innerText()).trim();
}

/** Waits until the tracking page shows `want` as its status, without navigating. */
async function waitStatus(page, want) {
  await page.waitForFunction(
    (w) => document.getElementById('status').textContent.trim() === w,
    want,
    { timeout: 15_000 },
  ).catch(async () => {
    assert.fail(`the tracking page should show ${want}; it shows ${await statusText(page)}`);
  });
}

async function rate(page, rating, comment) {
  const form = page.locator('form#rating-form');
  await form.locator(`input[name=rating][value=${rating}]`).check();
  if (comment) await form.locator('textarea[name=comment]').fill(comment);
  await Promise.all([
    page.waitForURL((u) => u.searchParams.has('rated')),
    form.locator('button[type=submit]').click(),
  ]);
  await page.waitForLoadState('domcontentloaded');
}

async function scrollWidth(page) {
  return page.evaluate(() => document.documentElement.scrollWidth);
}

test('the whole loop: submit, assess, assign, start, answer, live tracking, reopen, close', { timeout: 180_000 }, async () => {
  const resident = await loggedInPage(browser, 'resident');
  const worker = await loggedInPage(browser, 'ky.worker');
  try {
    // 收集: the resident submits with a photo and gets the tracking link.
    const description = unique('小区北门的路灯不亮，晚上回家看不清路');
    await resident.page.goto(url('/submit'));
    const resp = await submitDemand(resident.page, {
      description,
      photo: { name: 'lamp.png', mimeType: 'image/png', buffer: tinyPng() },
    });
    assert.equal(resp.status(), 303, `POST /submit answered ${resp.status()}`);
    assert.equal(new URL(resident.page.url()).searchParams.get('new'), '1');
    const token = tokenOf(resident.page);
    const link = resident.page.locator('#new-link #tracking-link');
    assert.equal(await link.count(), 1, 'the new tracking page shows the link to keep');
    assert.ok((await link.innerText()).includes(`/t/${token}`));
    assert.equal(await statusText(resident.page), '已受理');
    assert.equal((await resident.page.locator('#owner').innerText()).trim(), KY_PARTY);
    const id = await demandId(resident.page);

    // The resident keeps the tracking page open in its own tab.
    const track = await resident.context.newPage();
    await track.goto(url(`/t/${token}`));
    await track.waitForSelector('#live:not([hidden])', { timeout: 15_000 });
    await track.evaluate(() => { window.__kept = 'no reload'; });

    // 研判: the worker finds it in the queue.
    await worker.page.goto(url('/demands'));
    const row = worker.page.locator(`li.demand-row[data-id="${id}"]`);
    assert.equal(await row.count(), 1, 'the new demand is in ky.worker\'s queue');
    assert.equal(await row.locator('.clock').count(), 1, 'the row shows a deadline clock');
    assert.equal(await row.locator('time[datetime]').count(), 1, 'the row gives the raw deadline');
    assert.ok((await row.innerText()).includes(description.slice(0, 20)), 'the row shows the title');
    await row.locator('a.demand-link').click();
    await worker.page.waitForLoadState('domcontentloaded');
    const demandPath = new URL(worker.page.url()).pathname;
    assert.equal(demandPath, `/demands/${id}`);
    const img = worker.page.locator('#photos img');
    assert.equal(await img.count(), 1, 'the photo is on the demand page');
    await worker.page.waitForFunction(() => {
      const i = document.querySelector('#photos img');
      return i && i.complete && i.naturalWidth === 8;
    });
    assert.equal((await worker.page.locator('#reporter-phone').innerText()).trim(), '—', 'no phone was given');

    await act(worker.page, 'assess');
    await waitStatus(track, '已研判');

    // 落实: assign to the community's own party committee, start, answer.
    await act(worker.page, 'assign', async (form) => {
      await form.locator('select[name=unit_id]').selectOption({ label: KY_PARTY });
    });
    await waitStatus(track, '已派单');
    assert.equal((await track.locator('#handler').innerText()).trim(), KY_PARTY);
    await act(worker.page, 'start');
    await waitStatus(track, '办理中');
    assert.equal(await track.locator('#steps li[data-state=current]').innerText(), '办理中');
    const answer1 = '已联系供电所，今晚更换灯泡。';
    await act(worker.page, 'answer', async (form) => {
      await form.locator('textarea[name=text]').fill(answer1);
    });

    // 反馈: the open tracking page shows the answer and the rating form, live.
    await waitStatus(track, '已答复');
    await track.waitForSelector('#rate-card:not([hidden])');
    assert.equal((await track.locator('#answer').innerText()).trim(), answer1);
    assert.equal(await track.evaluate(() => window.__kept), 'no reload', 'the page must not have reloaded');
    assert.ok(await track.locator('#updated').isVisible(), 'the page says it was updated');

    // 不满意 reopens it.
    await rate(track, 'unsatisfied', '灯换了又坏了');
    assert.equal(await statusText(track), '已派单');
    assert.ok(await track.locator('#reopened').isVisible(), 'the page says the demand was reopened');
    assert.ok(await track.locator('#rate-card').isHidden(), 'no rating form while it is reworked');
    await track.evaluate(() => { window.__kept = 'second round'; });

    // The worker sees the reopen and answers again.
    await worker.page.goto(url(demandPath));
    assert.equal(await statusText(worker.page), '已派单');
    assert.ok((await worker.page.locator('#history').innerText()).includes('不满意'), 'the history shows the rating');
    assert.equal(await worker.page.locator('.badge', { hasText: '重办' }).count(), 1, 'the reopen is marked');
    const answer2 = '已更换整套灯具并检查线路。';
    await act(worker.page, 'answer', async (form) => {
      await form.locator('textarea[name=text]').fill(answer2);
    });
    await waitStatus(track, '已答复');
    assert.equal((await track.locator('#answer').innerText()).trim(), answer2);
    assert.equal(await track.evaluate(() => window.__kept), 'second round');

    // 满意 closes it.
    await rate(track, 'satisfied');
    assert.equal(await statusText(track), '已办结');
    assert.equal(await track.locator('#steps li[data-state=done]').count(), 6, 'every step is done');
    assert.equal((await track.locator('#rating').innerText()).trim(), '满意');

    // The worker's page has the full history; the resident finds it under 我的诉求.
    await worker.page.goto(url(demandPath));
    assert.equal(await statusText(worker.page), '已办结');
    const history = await worker.page.locator('#history li').allInnerTexts();
    for (const step of ['提交', '研判', '派单', '开始办理', '答复', '不满意，重新办理', '评价']) {
      assert.ok(history.some((h) => h.includes(step)), `the history should show ${step}: ${history.join(' | ')}`);
    }
    assert.equal(await worker.page.locator('#actions').count(), 0, 'nothing left to do once closed');
    await resident.page.goto(url('/my/demands'));
    assert.equal(
      await resident.page.locator(`li.demand-row[data-id="${id}"]`).count(),
      1,
      'the demand is under 我的诉求',
    );
  } finally {
    await resident.context.close();
    await worker.context.close();
  }
});

test('the repair form goes straight to the property company', { timeout: 90_000 }, async () => {
  const resident = await loggedInPage(browser, 'resident', { viewport: PHONE });
  const admin = await loggedInPage(browser, 'admin');
  try {
    const page = resident.page;
    await page.goto(url('/repair'));
    const form = page.locator('form#repair-form');
    assert.ok((await page.locator('#home-place').innerText()).includes('开元社区'), 'the resident\'s community is the default');
    await form.locator('textarea[name=description]').fill(unique('5号楼电梯按钮失灵'));
    await form.locator('input[name=building]').fill('5号楼1单元');
    await form.locator('input[name=photos]').setInputFiles({ name: 'lift.png', mimeType: 'image/png', buffer: tinyPng(4) });
    await Promise.all([
      page.waitForURL((u) => u.pathname.startsWith('/t/')),
      form.locator('button[type=submit]').click(),
    ]);
    assert.equal((await page.locator('#owner').innerText()).trim(), KY_PROPERTY);
    const id = await demandId(page);

    await admin.page.goto(url(`/demands/${id}`));
    assert.equal((await admin.page.locator('#owner').innerText()).trim(), KY_PROPERTY);
    const facts = await admin.page.locator('dl.facts').innerText();
    assert.ok(facts.includes('物业报修'), 'the channel is the repair form');
    assert.ok(facts.includes('5号楼1单元'), 'the building is recorded');
  } finally {
    await resident.context.close();
    await admin.context.close();
  }
});

test('the dashboard shows the three rates and exports CSV and XLSX', { timeout: 90_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'jy.official', { acceptDownloads: true });
  try {
    const resp = await page.goto(url('/dashboard/rates'));
    assert.equal(resp.status(), 200);
    for (const [id, label] of [['stat-response', '响应率'], ['stat-resolution', '解决率'], ['stat-satisfaction', '满意率']]) {
      const stat = page.locator(`#${id}`);
      assert.ok((await stat.locator('.stat-label').innerText()).includes(label), `${id} is labelled ${label}`);
      assert.match((await stat.locator('.stat-value').innerText()).trim(), /^(\d+\.\d\d%|—)$/, `${id} is a percentage or —`);
    }
    assert.ok((await page.locator('#rates-table tbody tr').count()) >= 1, 'the table has rows for the demo demands');
    assert.ok((await page.locator('svg.chart').count()) >= 3, 'one chart per rate');
    assert.equal(await page.locator('#definitions').count(), 1, 'the definitions are on the page');

    // A preset and another grouping.
    await page.locator('#preset-year').click();
    await page.waitForLoadState('domcontentloaded');
    assert.ok(new URL(page.url()).searchParams.get('from').endsWith('-01-01'));
    await page.locator('#rates-filter select[name=group]').selectOption('day');
    await Promise.all([page.waitForURL((u) => u.searchParams.get('group') === 'day'), page.locator('#rates-filter button').click()]);
    assert.ok((await page.locator('#rates-table tbody tr').count()) >= 1);

    const [csv] = await Promise.all([page.waitForEvent('download'), page.locator('#export-csv').click()]);
    const csvBytes = await readFile(await csv.path());
    assert.deepEqual([...csvBytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'the CSV starts with a UTF-8 BOM');
    const header = csvBytes.toString('utf8').split('\r\n')[1 - 1].replace(/^\uFEFF/, '');
    assert.ok(header.includes('响应率') && header.includes('应响应'), `CSV header: ${header}`);
    assert.ok(csv.suggestedFilename().endsWith('.csv'));

    const [xlsx] = await Promise.all([page.waitForEvent('download'), page.locator('#export-xlsx').click()]);
    const xlsxBytes = await readFile(await xlsx.path());
    assert.equal(xlsxBytes.subarray(0, 2).toString('latin1'), 'PK', 'the XLSX is a zip');
    assert.ok(xlsx.suggestedFilename().endsWith('.xlsx'));

    // A resident may not see it.
    const res = await loggedInPage(browser, 'resident');
    try {
      const r = await res.page.goto(url('/dashboard/rates'));
      assert.equal(r.status(), 403);
    } finally {
      await res.context.close();
    }
  } finally {
    await context.close();
  }
});

test('an administrator adds and deletes a routing rule', { timeout: 90_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'admin');
  try {
    await page.goto(url('/admin/loop'));
    const rule = `#rules-table tr[data-category=education][data-place="${KY}"]`;
    assert.equal(await page.locator(rule).count(), 0, 'no such rule yet');
    const add = async () => {
      const form = page.locator('form#add-rule');
      await form.locator('select[name=category]').selectOption('education');
      await form.locator('input[name=place]').fill(KY);
      await form.locator('input[name=unit]').fill('JY-BYXL-KY');
      const [resp] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/admin/loop/rules'),
        form.locator('button[type=submit]').click(),
      ]);
      await page.waitForLoadState('domcontentloaded');
      return resp;
    };
    assert.equal((await add()).status(), 303);
    assert.ok(await page.locator('#ok-note').isVisible());
    assert.equal(await page.locator(rule).count(), 1, 'the rule is listed');
    assert.ok((await page.locator(rule).innerText()).includes(KY_PARTY));

    // The same rule again is refused with a message, not a 500.
    const again = await add();
    assert.equal(again.status(), 409);
    assert.ok((await page.locator('#form-error').innerText()).length > 0);

    await Promise.all([
      page.waitForURL((u) => u.searchParams.get('ok') === 'rule_deleted'),
      page.locator(`${rule} button[type=submit]`).click(),
    ]);
    assert.equal(await page.locator(rule).count(), 0, 'the rule is gone');

    // Time limits and calendars are on the same page.
    assert.equal(await page.locator('#limit-matrix').count(), 1);
    assert.ok((await page.locator('#covered-years').innerText()).length > 0);
    // Officials may not change the loop's rules.
    const official = await loggedInPage(browser, 'jy.official');
    try {
      const r = await official.page.goto(url('/admin/loop'));
      assert.equal(r.status(), 403);
      assert.equal(await official.page.locator('#nav-loop').count(), 0);
    } finally {
      await official.context.close();
    }
  } finally {
    await context.close();
  }
});

test('an anonymous visitor submits from a phone; the pages fit the screen', { timeout: 90_000 }, async () => {
  const context = await newContext(browser, { viewport: PHONE, isMobile: true, hasTouch: true });
  try {
    const page = await context.newPage();
    await page.goto(url('/submit'));
    await page.waitForLoadState('load');
    let w = await scrollWidth(page);
    assert.ok(w <= PHONE.width + 1, `/submit scrollWidth ${w} > ${PHONE.width + 1}`);
    assert.ok((await page.locator('#phone-note').innerText()).includes('****'), 'the page says how the phone is protected');
    const resp = await submitDemand(page, { kind: 'suggestion', description: unique('建议小区增设非机动车充电桩') });
    assert.equal(resp.status(), 303);
    await page.waitForLoadState('load');
    w = await scrollWidth(page);
    assert.ok(w <= PHONE.width + 1, `/t/{token} scrollWidth ${w} > ${PHONE.width + 1}`);
    assert.equal(await statusText(page), '已受理');
    await page.goto(url('/repair'));
    w = await scrollWidth(page);
    assert.ok(w <= PHONE.width + 1, `/repair scrollWidth ${w} > ${PHONE.width + 1}`);
  } finally {
    await context.close();
  }
});

test('bad input is explained on the page, never a 500', { timeout: 90_000 }, async () => {
  const context = await newContext(browser);
  try {
    const page = await context.newPage();
    await page.goto(url('/submit'));
    // Blank (only spaces) description: the browser lets it through, the desk does not.
    let resp = await submitDemand(page, { description: '   ' });
    assert.equal(resp.status(), 422);
    assert.ok((await page.locator('#form-error').innerText()).includes('请填写诉求内容'));
    assert.equal(await page.locator('textarea[name=description][aria-invalid=true]').count(), 1);

    // A text file as a photo.
    resp = await submitDemand(page, {
      description: unique('测试：错误的照片'),
      photo: { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('not a picture') },
    });
    assert.equal(resp.status(), 422);
    assert.ok((await page.locator('#form-error').innerText()).includes('JPEG'));
    // The description typed survives the refusal.
    assert.ok((await page.locator('textarea[name=description]').inputValue()).includes('错误的照片'));

    // A forged POST without the form's token is refused.
    const forged = await page.request.post(url('/submit'), {
      multipart: { kind: 'help', category: 'other', place: KY, description: 'forged' },
      headers: { Origin: BASE_URL },
      maxRedirects: 0,
    });
    assert.equal(forged.status(), 403);

    // An unknown tracking token is a 404 page.
    const r = await page.goto(url('/t/nosuchtoken123'));
    assert.equal(r.status(), 404);
  } finally {
    await context.close();
  }
});

test('a step the demand has moved past is refused with a clear message', { timeout: 90_000 }, async () => {
  const resident = await newContext(browser);
  const worker = await loggedInPage(browser, 'ky.worker');
  try {
    const page = await resident.newPage();
    await page.goto(url('/submit'));
    await submitDemand(page, { description: unique('楼下商铺油烟扰民') });
    const id = await demandId(page);
    // Two tabs on the same demand: assess in one, then assess again from the stale one.
    const stale = await worker.context.newPage();
    await stale.goto(url(`/demands/${id}`));
    await worker.page.goto(url(`/demands/${id}`));
    await act(worker.page, 'assess');
    await act(worker.page, 'assign', async (form) => {
      await form.locator('select[name=unit_id]').selectOption({ label: KY_PARTY });
    });
    const form = stale.locator('form#act-assess');
    const [resp] = await Promise.all([
      stale.waitForResponse((r) => r.request().method() === 'POST'),
      form.locator('button[type=submit]').click(),
    ]);
    assert.equal(resp.status(), 409);
    await stale.waitForLoadState('domcontentloaded');
    assert.ok((await stale.locator('#action-error').innerText()).includes('状态已经变了'));
    assert.equal(await statusText(stale), '已派单', 'the refused page shows the demand as it is now');
  } finally {
    await resident.close();
    await worker.context.close();
  }
});

test('the handling worker may reveal a reporter\'s number, which is shown nowhere else', { timeout: 90_000 }, async () => {
  const context = await newContext(browser);
  const worker = await loggedInPage(browser, 'ky.worker');
  try {
    const page = await context.newPage();
    await page.goto(url('/submit'));
    await page.locator('form#submit-form input[name=reporter_phone]').fill('13912345678');
    const resp = await submitDemand(page, { description: unique('楼下路灯不亮') });
    assert.equal(resp.status(), 303);
    await page.waitForLoadState('load');
    const id = await demandId(page);
    assert.ok(!(await page.content()).includes('13912345678'), 'the tracking page never shows the number');

    await worker.page.goto(url(`/demands/${id}`));
    assert.ok((await worker.page.locator('#reporter-phone').innerText()).startsWith('139****5678'));
    assert.ok(!(await worker.page.content()).includes('13912345678'), 'the demand page shows it masked');
    await Promise.all([
      worker.page.waitForURL((u) => u.pathname === `/demands/${id}/phone`),
      worker.page.locator('#reveal-phone').click(),
    ]);
    assert.equal((await worker.page.locator('#full-phone').innerText()).trim(), '13912345678');
  } finally {
    await worker.context.close();
    await context.close();
  }
});

test('searching for a place keeps what is typed in the form', { timeout: 60_000 }, async () => {
  const context = await newContext(browser);
  try {
    const page = await context.newPage();
    await page.goto(url('/submit'));
    const text = unique('小区门口积水');
    await page.locator('form#submit-form textarea[name=description]').fill(text);
    await page.locator('#place_q').fill('花园');
    await Promise.all([
      page.waitForResponse((r) => new URL(r.url()).searchParams.get('place_q') === '花园'),
      page.locator('form#place-search button[type=submit]').click(),
    ]);
    await page.waitForFunction(() => document.querySelector('select#place option[value="150207.SHAHE.HY"]') !== null);
    assert.equal(await page.locator('form#submit-form textarea[name=description]').inputValue(), text);
    assert.equal(new URL(page.url()).pathname, '/submit', 'the page was not reloaded away');
  } finally {
    await context.close();
  }
});
