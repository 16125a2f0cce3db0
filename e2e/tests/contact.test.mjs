// Officials' contact points (党建联系点) in a real browser: the district view and its
// figures, the points pages and the priority explained, the re-match when an official
// changes post and the handover to the successor, end to end (admin records the change,
// the queue orders it by status and priority, every point of hers warns rematch_open and
// a point still held by others shows the re-match banner; only successors the link rules
// allow are proposed; the successor acknowledges and the point is theirs), a point left
// with nobody showing as unlinked, recording a visit on a phone with a demand that
// enters the loop, a visit dated in the future refused, refusals and warning details in
// Chinese (and English once switched), the English switch, CSV exports.
//
// Writes to the shared server: ends the posts of 钱玉兰 (re-match of 开元社区 handed to
// 赵立群 = jy.official and acknowledged; 哈业胡同村 left open) and 其木格 (赛汗社区, confirmed,
// not acknowledged), and records one visit with one demand as jy.official.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import {
  launchBrowser, loggedInPage, url, PHONE, submit, goOk, scrollWidth, parseCsv,
} from '../lib/helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const ZHAO = '赵立群'; // jy.official, 区委书记
const ZHAO_POINT = '二道沙河西村';
const QIAN = '钱玉兰'; // 区委副书记, holds 开元社区 with others
const KAIYUAN = '开元社区';
const QIMUGE = '其木格'; // the only official of 赛汗社区
const SAIHAN = '赛汗社区';
const RIDERS = '九原区外卖骑手群体'; // the unlinked high-priority sector point

/** A text unique to this run. */
function unique(text) {
  return `${text}（测试 ${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}）`;
}

function num(text) {
  const n = Number(String(text).replace(/[\s,，]/g, ''));
  assert.ok(Number.isFinite(n), `not a number: "${text}"`);
  return n;
}

async function stat(page, id) {
  return num(await page.locator(`#${id} .stat-value`).innerText());
}

/** The district figures as the page at /governance shows them. */
async function figures(page) {
  await goOk(page, '/governance');
  return { visits: await stat(page, 'stat-visits'), demands: await stat(page, 'stat-demands') };
}

/**
 * The by-point table of /governance: [{ id, name, holders: [names], pending }].
 * `pending` = the row is flagged as being re-matched.
 */
async function pointRows(page) {
  await goOk(page, '/governance');
  return page.locator('#gov-points-table tbody tr').evaluateAll((trs) => trs.map((tr) => {
    const cells = tr.querySelectorAll('td');
    const linked = cells[2];
    const names = [...linked.childNodes]
      .filter((n) => n.nodeType === Node.TEXT_NODE)
      .map((n) => n.textContent)
      .join('')
      .split('、')
      .map((s) => s.trim())
      .filter(Boolean);
    return {
      id: tr.dataset.point,
      name: cells[0].innerText.trim(),
      holders: names,
      pending: tr.hasAttribute('data-rematch'),
      priority: Number(cells[1].innerText.trim()),
    };
  }));
}

/** Rows of the re-match queue: [{ id, status, point, priority, predecessor }]. */
async function queue(page) {
  await goOk(page, '/rematches');
  if ((await page.locator('#rematch-table').count()) === 0) return []; // nothing re-matched yet
  const head = await page.locator('#rematch-table thead th').allInnerTexts();
  assert.deepEqual(head.slice(0, 3).map((h) => h.trim()), ['联系点', '优先级', '原联系领导'], `queue columns: ${head}`);
  return page.locator('#rematch-table tbody tr').evaluateAll((trs) => trs.map((tr) => ({
    id: tr.dataset.rematch,
    status: tr.dataset.status,
    point: tr.querySelector('td a').textContent.trim(),
    href: tr.querySelector('td a').getAttribute('href'),
    priority: Number(tr.querySelectorAll('td')[1].textContent.trim()),
    predecessor: tr.querySelectorAll('td')[2].textContent.trim(),
  })));
}

/** The queue is ordered: open first, then confirmed, then acknowledged; by priority within each. */
function assertQueueOrder(rows) {
  const stage = { open: 0, confirmed: 1, acknowledged: 2 };
  for (let i = 1; i < rows.length; i++) {
    const [a, b] = [rows[i - 1], rows[i]];
    assert.ok(a.status in stage && b.status in stage, `known statuses: ${a.status}, ${b.status}`);
    assert.ok(Number.isFinite(a.priority) && Number.isFinite(b.priority), `priorities shown: ${a.priority}, ${b.priority}`);
    const ok = stage[a.status] < stage[b.status]
      || (stage[a.status] === stage[b.status] && a.priority >= b.priority);
    assert.ok(ok, `queue order: ${a.point} (${a.status}, ${a.priority}) before ${b.point} (${b.status}, ${b.priority})`);
  }
}

/** Officials who hold as many points as the rules allow, and that maximum (from /governance, as admin). */
async function officialsAtMax(page) {
  await goOk(page, '/governance');
  const max = Number(await page.locator('#rules-form input[name=max_points_per_official]').inputValue());
  assert.ok(max >= 1, `max points per official: ${max}`);
  const rows = await page.locator('#officials-table tbody tr').evaluateAll((trs) =>
    trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())));
  return { max, names: rows.filter((r) => Number(r[2]) >= max).map((r) => r[0]) };
}

/** The proposed successors on a re-match page: [{ id, name, text }]. */
async function candidatesOn(page) {
  return page.locator('#candidates li[data-candidate]').evaluateAll((lis) =>
    lis.map((li) => ({ id: li.dataset.candidate, name: li.textContent.trim().split(' · ')[0].trim(), text: li.textContent.trim() })));
}

const HAS_LATIN_WORD = /[A-Za-z]{3,}/;

/** Record on /rematches that `name`'s post ends today; returns their person id. */
async function endPost(page, name) {
  await goOk(page, '/rematches');
  const option = page.locator('#post-change-person option', { hasText: name });
  assert.equal(await option.count(), 1, `${name} should be offered on the post-change form (a fresh demo is needed)`);
  const personId = await option.getAttribute('value');
  await page.locator('#post-change-person').selectOption(personId);
  const on = await page.locator('#post-change-on').inputValue();
  assert.match(on, /^\d{4}-\d\d-\d\d$/, 'the date defaults to today');
  const resp = await submit(page, page.locator('#post-change-submit'), '/rematches/post-change');
  assert.equal(resp.status(), 303, `recording ${name}'s change of post answered ${resp.status()}`);
  assert.equal(new URL(page.url()).pathname, '/rematches');
  assert.equal(await page.locator('#form-error').count(), 0, 'no error after recording the change');
  assert.equal(
    await page.locator('#post-change-person option', { hasText: name }).count(), 0,
    `${name} holds no post any more, so is no longer offered`,
  );
  return { personId, on };
}

test('the district view: officials, visits, demands, and the unlinked high-priority point', { timeout: 60_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'admin');
  try {
    await goOk(page, '/governance');
    const headline = (await page.locator('#headline').innerText()).trim();
    const m = headline.match(/^(\d+) 名领导干部，走访 (\d+) 次，收集诉求 (\d+) 件$/);
    assert.ok(m, `headline: "${headline}"`);
    const [officials, visits, demands] = m.slice(1).map(Number);
    // The demo's lead story: 17 officials, 117 visits, 100+ demands (more once visits are recorded).
    assert.equal(officials, 17, headline);
    assert.ok(visits >= 117, `at least the demo's 117 visits: ${headline}`);
    assert.ok(demands >= 100, `100+ demands: ${headline}`);
    assert.equal(await stat(page, 'stat-officials'), officials);
    assert.equal(await stat(page, 'stat-visits'), visits);
    assert.equal(await stat(page, 'stat-demands'), demands);

    // The per-official table adds up to the headline.
    const rows = await page.locator('#officials-table tbody tr').evaluateAll((trs) =>
      trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent.trim())));
    assert.equal(rows.length, officials, 'one row per official');
    assert.equal(rows.reduce((s, r) => s + Number(r[3]), 0), visits, 'visits per official add up');
    assert.equal(rows.reduce((s, r) => s + Number(r[4]), 0), demands, 'demands per official add up');
    assert.ok(rows.some((r) => r[0] === ZHAO && r[1].includes('区委书记')), '赵立群 is listed with his post');
    assert.ok((await page.locator('svg.chart').count()) >= 1, 'the visits chart is drawn');

    // A high-priority point nobody holds raises a warning, listed first.
    const riders = page.locator('#gov-points-table tbody tr', { hasText: RIDERS });
    assert.equal(await riders.count(), 1, `${RIDERS} is in the by-point table`);
    const ridersId = await riders.getAttribute('data-point');
    assert.equal(await riders.locator('.badge-amber').count(), 1, `${RIDERS} shows as unlinked`);
    const warning = page.locator(`#warnings li.warning-unlinked_high_priority[data-point="${ridersId}"]`);
    assert.equal(await warning.count(), 1, `${RIDERS} raises the unlinked high-priority warning`);
    const first = page.locator('#warnings li').first();
    assert.equal(await first.getAttribute('class'), 'warning-unlinked_high_priority', 'that warning comes first');
    // The rules an admin may set are on the page.
    assert.equal(await page.locator('#rules-form').count(), 1, 'admin sees the rules form');
  } finally {
    await context.close();
  }
});

test('the points pages: my points, every point, a priority explained', { timeout: 60_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'jy.official');
  try {
    await goOk(page, '/points');
    const mine = page.locator('#my-points a', { hasText: ZHAO_POINT });
    assert.equal(await mine.count(), 1, `${ZHAO_POINT} is under 我的联系点`);
    assert.match(await mine.getAttribute('href'), /^\/points\/\d+$/);
    assert.equal(await page.locator('#record-visit').count(), 1, 'an official may record a visit');

    const row = page.locator('#points-table tbody tr', { hasText: RIDERS });
    assert.equal(await row.count(), 1, `${RIDERS} is among all points`);
    assert.equal(await row.getAttribute('class'), 'warn-row', 'the unlinked point is marked');
    const id = await row.getAttribute('data-point');

    await goOk(page, `/points/${id}`);
    assert.equal(await page.locator('#unlinked-warning').count(), 1, 'the point page warns it is unlinked');
    assert.ok((await page.locator('#unlinked-warning').innerText()).includes('高优先级'));
    const score = Number((await page.locator('#priority-score').innerText()).trim());
    assert.ok(score >= 70, `a high-priority point: score ${score}`);
    const parts = await page.locator('#priority-parts tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({ code: tr.dataset.indicator, adds: Number(tr.querySelectorAll('td')[3].textContent) })));
    assert.deepEqual(parts.map((p) => p.code).sort(), ['complexity', 'task_load', 'weakness']);
    const sum = parts.reduce((s, p) => s + p.adds, 0);
    assert.ok(Math.abs(sum - score) < 0.2, `the parts (${sum}) explain the score (${score})`);
    assert.equal(await page.locator('#indicators-form').count(), 0, 'an official may not set indicators');

    // The organisation department's pages are not an official's.
    const r = await page.goto(url('/rematches'));
    assert.equal(r.status(), 403, '/rematches is for the organisation department');
  } finally {
    await context.close();
  }
});

test('the organisation department\'s /points: the page title is just the title', async () => {
  const { context, page } = await loggedInPage(browser, 'admin');
  try {
    await goOk(page, '/points');
    assert.equal(await page.locator('#new-point-form').count(), 1, 'the new-point form is on the page once');
    assert.equal(await page.title(), '党建联系点 · 连心');
  } finally {
    await context.close();
  }
});

test('re-match and handover end to end: a change of post, a successor confirmed, the handover acknowledged', { timeout: 180_000 }, async () => {
  const admin = await loggedInPage(browser, 'admin');
  let official;
  try {
    const page = admin.page;
    // Before: the points 钱玉兰 holds, and who holds them with her.
    const beforeRows = await pointRows(page);
    const hers = beforeRows.filter((r) => r.holders.includes(QIAN));
    assert.ok(hers.some((r) => r.name === KAIYUAN), `${QIAN} holds ${KAIYUAN} (a fresh demo is needed): ${JSON.stringify(hers)}`);
    const kaiyuan = hers.find((r) => r.name === KAIYUAN);
    assert.ok(!kaiyuan.holders.includes(ZHAO), `${ZHAO} does not hold ${KAIYUAN} yet`);
    const known = new Set((await queue(page)).map((q) => q.id));

    // (1) Her post ends today: one open re-match per point she held.
    const { personId: qianId, on } = await endPost(page, QIAN);
    const rows = await queue(page);
    assertQueueOrder(rows);
    const fresh = rows.filter((q) => !known.has(q.id));
    assert.deepEqual(fresh.map((q) => q.point).sort(), hers.map((r) => r.name).sort(), 'a re-match for each of her points');
    for (const q of fresh) {
      assert.equal(q.status, 'open', `${q.point}'s re-match is open`);
      assert.ok(q.predecessor.includes(QIAN), `${q.point}'s predecessor is ${QIAN}`);
      const p = hers.find((r) => r.name === q.point);
      assert.ok(Math.abs(q.priority - p.priority) < 0.05, `${q.point}'s priority in the queue (${q.priority}) is the point's (${p.priority})`);
    }

    // (2) The dashboard shows each of her points as being re-matched (or unlinked if
    //     nobody else holds it), warns that each re-match waits for a successor, and
    //     links to the queue.
    const afterRows = await pointRows(page);
    for (const p of hers) {
      const now = afterRows.find((r) => r.id === p.id);
      assert.ok(!now.holders.includes(QIAN), `${p.name} no longer lists ${QIAN}`);
      assert.ok(now.pending, `${p.name} is flagged as being re-matched on /governance`);
      assert.equal(await page.locator(`#warnings li.warning-rematch_open[data-point="${p.id}"]`).count(), 1,
        `${p.name} raises the rematch_open warning${now.holders.length ? ` although ${now.holders} still hold it` : ''}`);
      if (now.holders.length === 0) {
        const code = now.priority >= 70 ? 'unlinked_high_priority' : 'unlinked';
        assert.equal(await page.locator(`#warnings li.warning-${code}[data-point="${p.id}"]`).count(), 1,
          `${p.name}, held by nobody now, raises a warning`);
      }
    }
    assert.ok((await page.locator('#to-rematches').innerText()).match(/\((\d+)\)/), 'the warnings link to the queue');
    const rematchWarning = page.locator(`#warnings li.warning-rematch_open[data-point="${kaiyuan.id}"]`);
    assert.equal((await rematchWarning.locator('.badge').innerText()).trim(), '职务变动待调整匹配');
    const detail = (await rematchWarning.locator('.muted').innerText()).trim();
    assert.match(detail, /^优先级 \d+\.\d$/, `the warning's detail is in Chinese: "${detail}"`);

    // The point page says a re-match is under way, but the point is not unlinked:
    // others still hold it.
    const rematchOfKaiyuan = fresh.find((q) => q.point === KAIYUAN);
    await goOk(page, `/points/${kaiyuan.id}`);
    assert.ok(await page.locator('#rematch-banner').isVisible(), `${KAIYUAN}'s page shows the re-match banner`);
    assert.equal(await page.locator(`#rematch-banner a[href="/rematches/${rematchOfKaiyuan.id}"]`).count(), 1,
      'the banner links to the re-match');
    assert.equal(await page.locator('#unlinked-warning').count(), 0, `${KAIYUAN} is still held, so not unlinked`);

    // (3) The re-match of 开元社区: proposed successors, a bad choice refused, 赵立群 confirmed.
    const rematch = fresh.find((q) => q.point === KAIYUAN);
    await goOk(page, '/rematches');
    await page.locator(`#rematch-table tr[data-rematch="${rematch.id}"] a`).click();
    await page.waitForURL((u) => u.pathname === `/rematches/${rematch.id}`);
    assert.equal(await page.locator('#rematch-status').getAttribute('data-status'), 'open');
    assert.equal((await page.locator('#rematch-status').innerText()).trim(), '待匹配');
    assert.equal(await page.locator('#handover').count(), 0, 'nothing handed over yet');
    const candidates = await candidatesOn(page);
    assert.ok(candidates.length >= 1, 'successors are proposed');
    assert.ok(!candidates.some((k) => k.id === qianId), `${QIAN} is not proposed to succeed herself`);
    for (const k of candidates) {
      assert.equal(await page.locator(`#confirm-${k.id}`).count(), 1, `a confirm button for candidate ${k.id}`);
    }
    // Only those the link rules allow: nobody already linked to the point, nobody who
    // already holds as many points as the rules allow.
    const holdersNow = afterRows.find((r) => r.id === kaiyuan.id).holders;
    assert.ok(holdersNow.length >= 1, `others still hold ${KAIYUAN}: ${holdersNow}`);
    const linkedProposed = candidates.filter((k) => holdersNow.includes(k.name));
    assert.deepEqual(linkedProposed.map((k) => k.name), [], `${KAIYUAN}'s holders (${holdersNow}) are not proposed`);
    const atMax = await officialsAtMax(page);
    assert.ok(atMax.names.length >= 1, `the demo has officials at the maximum of ${atMax.max} points`);
    const fullProposed = candidates.filter((k) => atMax.names.includes(k.name));
    assert.deepEqual(fullProposed.map((k) => k.name), [], `officials at ${atMax.max} points (${atMax.names}) are not proposed`);
    await goOk(page, `/rematches/${rematch.id}`);

    // Bad input: a handover to someone who holds no post (钱玉兰 herself, now) is refused.
    const firstForm = page.locator('#candidates li[data-candidate] form').first();
    await firstForm.locator('input[name=successor_id]').evaluate((el, id) => { el.value = id; }, qianId);
    let resp = await submit(page, firstForm.locator('button[type=submit]'), `/rematches/${rematch.id}/confirm`);
    assert.equal(resp.status(), 422, `a successor with no post answered ${resp.status()}`);
    assert.equal(await page.locator('#form-error').count(), 1, 'the refusal is explained');
    assert.equal((await page.locator('#form-error .error').innerText()).trim(), '该人员在该日期没有担任职务，不能接续联系点。',
      'in Chinese');
    assert.equal(await page.locator('#rematch-status').getAttribute('data-status'), 'open', 'still open');

    const zhao = page.locator('#candidates li[data-candidate]', { hasText: ZHAO });
    assert.equal(await zhao.count(), 1, `${ZHAO} is among the proposed successors`);
    const zhaoId = await zhao.getAttribute('data-candidate');
    resp = await submit(page, page.locator(`#confirm-${zhaoId}`), `/rematches/${rematch.id}/confirm`);
    assert.equal(resp.status(), 303, `confirming ${ZHAO} answered ${resp.status()}`);
    assert.equal(new URL(page.url()).pathname, `/rematches/${rematch.id}`);
    assert.equal(await page.locator('#rematch-status').getAttribute('data-status'), 'confirmed');
    assert.equal((await page.locator('#rematch-status').innerText()).trim(), '待接收');
    assert.equal((await page.locator('#successor').innerText()).trim(), ZHAO);
    assert.equal(await page.locator('#candidates').count(), 0, 'no more choosing once confirmed');
    assert.equal(await page.locator('#handover').count(), 1, 'the handover is shown');
    assert.equal(await page.locator('#acknowledged-at').count(), 0, 'not acknowledged yet');
    const handed = await page.locator('#handover-items li a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    for (const href of handed) assert.match(href, /^\/(demands|visits)\/\d+$/, `a handed-over item links to it: ${href}`);

    // Confirmed re-matches come after the open ones in the queue.
    const confirmedQueue = await queue(page);
    assertQueueOrder(confirmedQueue);
    assert.equal(confirmedQueue.find((q) => q.id === rematch.id).status, 'confirmed');

    // Until acknowledged, the dashboard says the handover is pending.
    await goOk(page, '/governance');
    assert.equal(await page.locator(`#warnings li.warning-handover_pending[data-point="${kaiyuan.id}"]`).count(), 1,
      `${KAIYUAN}'s handover shows as pending`);
    assert.equal(await page.locator(`#warnings li.warning-rematch_open[data-point="${kaiyuan.id}"]`).count(), 0,
      'a successor is confirmed, so the re-match no longer waits for one');
    for (const p of hers.filter((r) => r.id !== kaiyuan.id)) {
      assert.equal(await page.locator(`#warnings li.warning-rematch_open[data-point="${p.id}"]`).count(), 1,
        `${p.name} still waits for a successor`);
    }
    assert.equal(await page.locator(`#gov-points-table tr[data-point="${kaiyuan.id}"][data-rematch]`).count(), 1);

    // (4) 赵立群 sees the handover on /points and acknowledges it.
    official = await loggedInPage(browser, 'jy.official');
    const op = official.page;
    await goOk(op, '/points');
    const article = op.locator(`#handovers article[data-rematch="${rematch.id}"]`);
    assert.equal(await article.count(), 1, 'the handover waits for jy.official');
    assert.equal((await article.locator('h3').innerText()).trim(), KAIYUAN);
    assert.ok((await article.innerText()).includes(QIAN), 'it names the predecessor');
    const offered = await article.locator('li a').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.deepEqual([...offered].sort(), [...handed].sort(), 'the successor sees the items handed over');
    for (const href of offered) {
      const r = await official.context.request.get(url(href), { maxRedirects: 0 });
      assert.equal(r.status(), 200, `the successor may open ${href}`);
    }
    resp = await submit(op, op.locator(`#acknowledge-${rematch.id}`), `/rematches/${rematch.id}/acknowledge`);
    assert.equal(resp.status(), 303, `acknowledging answered ${resp.status()}`);
    assert.equal(new URL(op.url()).pathname, '/points', 'back to /points');
    assert.equal(new URL(op.url()).searchParams.get('acknowledged'), '1');
    assert.ok(await op.locator('#ok-note').isVisible(), 'the page confirms the handover');
    assert.equal((await op.locator('#ok-note').innerText()).trim(), '已确认接收，联系点已恢复联系。');
    assert.equal(await op.locator(`#handovers article[data-rematch="${rematch.id}"]`).count(), 0, 'nothing left to acknowledge');
    assert.equal(await op.locator(`#my-points a[href="/points/${kaiyuan.id}"]`).count(), 1, `${KAIYUAN} is now one of his points`);
    assert.equal(await op.locator('#my-points a', { hasText: ZHAO_POINT }).count(), 1, 'and he keeps his own');

    await goOk(op, `/points/${kaiyuan.id}`);
    const current = op.locator('#links li.current', { hasText: ZHAO });
    assert.equal(await current.count(), 1, `${ZHAO} holds ${KAIYUAN} now`);
    assert.ok((await current.innerText()).includes(on), `from the day of the change (${on})`);
    assert.equal(await op.locator('#links li.current', { hasText: QIAN }).count(), 0, `${QIAN} no longer does`);
    assert.equal(await op.locator('#links li', { hasText: QIAN }).count() >= 1, true, 'her link stays as history');
    assert.equal(await op.locator('#unlinked-warning').count(), 0, 'the point is not unlinked');
    assert.equal(await op.locator('#rematch-banner').count(), 0, 'and no longer under re-match');

    // (5) The queue shows the re-match as taken over; the dashboard no longer warns.
    const after = (await queue(page)).find((q) => q.id === rematch.id);
    assert.equal(after.status, 'acknowledged');
    await goOk(page, '/governance');
    assert.equal(await page.locator(`#warnings li.warning-handover_pending[data-point="${kaiyuan.id}"]`).count(), 0);
    assert.equal(await page.locator(`#warnings li.warning-rematch_open[data-point="${kaiyuan.id}"]`).count(), 0);
    assert.equal(await page.locator(`#gov-points-table tr[data-point="${kaiyuan.id}"][data-rematch]`).count(), 0,
      `${KAIYUAN} is no longer flagged`);
    const final = (await pointRows(page)).find((r) => r.id === kaiyuan.id);
    assert.ok(final.holders.includes(ZHAO), `the dashboard lists ${ZHAO} for ${KAIYUAN}: ${final.holders}`);
    await goOk(page, `/rematches/${rematch.id}`);
    assert.equal(await page.locator('#rematch-status').getAttribute('data-status'), 'acknowledged');
    assert.equal(await page.locator('#handover').count(), 1, 'the handover stays on record');
    // When it was acknowledged, in local time as people read it (not an ISO instant in UTC).
    const at = (await page.locator('#acknowledged-at').innerText()).trim();
    assert.match(at, /^\d{4}-\d\d-\d\d \d\d:\d\d$/, `the acknowledgement time reads as a local date and time: "${at}"`);
    assert.ok(!(await page.locator('#handover').innerText()).match(/\d{4}-\d\d-\d\dT\d\d:|\+00:00|\dZ\b/),
      'no ISO/UTC instant on the page');
  } finally {
    await admin.context.close();
    await official?.context.close();
  }
});

test('a point its only official leaves shows as unlinked until a successor takes over', { timeout: 120_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'admin');
  try {
    const saihan = (await pointRows(page)).find((r) => r.name === SAIHAN);
    assert.ok(saihan, `${SAIHAN} is a contact point`);
    assert.deepEqual(saihan.holders, [QIMUGE], `${QIMUGE} alone holds ${SAIHAN}`);
    const code = saihan.priority >= 70 ? 'unlinked_high_priority' : 'unlinked';
    assert.equal(await page.locator(`#warnings li[data-point="${saihan.id}"]`, { hasText: '无人联系' }).count(), 0,
      'no unlinked warning before');

    await endPost(page, QIMUGE);
    const rematch = (await queue(page)).find((q) => q.point === SAIHAN && q.status === 'open');
    assert.ok(rematch, `an open re-match for ${SAIHAN}`);

    const now = (await pointRows(page)).find((r) => r.id === saihan.id);
    assert.deepEqual(now.holders, [], 'nobody holds it now');
    assert.equal(await page.locator(`#gov-points-table tr[data-point="${saihan.id}"] .badge-amber`).count() >= 1, true,
      'the by-point table shows it unlinked');
    assert.equal(await page.locator(`#warnings li.warning-${code}[data-point="${saihan.id}"]`).count(), 1,
      `/governance warns (${code})`);
    assert.equal(await page.locator(`#warnings li.warning-rematch_open[data-point="${saihan.id}"]`).count(), 1,
      'and that the re-match waits for a successor');
    await goOk(page, '/points');
    assert.equal(await page.locator(`#points-table tr[data-point="${saihan.id}"]`).getAttribute('class'), 'warn-row');
    await goOk(page, `/points/${saihan.id}`);
    assert.equal(await page.locator('#unlinked-warning').count(), 1, 'the point page warns');
    assert.equal(await page.locator(`#unlinked-warning a[href="/rematches/${rematch.id}"]`).count(), 1,
      'and links to its re-match');
    assert.equal(await page.locator('#rematch-banner').count(), 0, 'the unlinked warning says it all, no banner as well');

    // Nobody is proposed who already holds as many points as the rules allow.
    const atMax = await officialsAtMax(page);
    await goOk(page, `/rematches/${rematch.id}`);
    const candidates = await candidatesOn(page);
    assert.ok(candidates.length >= 1, 'successors are proposed');
    assert.deepEqual(candidates.filter((k) => atMax.names.includes(k.name)).map((k) => k.name), [],
      `officials at ${atMax.max} points (${atMax.names}) are not proposed`);
    assert.ok(!candidates.some((k) => k.name === QIMUGE), `${QIMUGE} is not proposed to succeed herself`);

    // A successor confirmed but not yet acknowledged: still unlinked, handover pending.
    const first = page.locator('#candidates li[data-candidate]').first();
    const successorId = await first.getAttribute('data-candidate');
    const resp = await submit(page, page.locator(`#confirm-${successorId}`), `/rematches/${rematch.id}/confirm`);
    assert.equal(resp.status(), 303, `confirming the first candidate answered ${resp.status()}`);
    assert.equal(await page.locator('#rematch-status').getAttribute('data-status'), 'confirmed');
    await goOk(page, '/governance');
    assert.equal(await page.locator(`#warnings li.warning-${code}[data-point="${saihan.id}"]`).count(), 1,
      'still unlinked until the successor acknowledges');
    assert.equal(await page.locator(`#warnings li.warning-handover_pending[data-point="${saihan.id}"]`).count(), 1,
      'and the handover is pending');
    assert.equal(await page.locator(`#warnings li.warning-rematch_open[data-point="${saihan.id}"]`).count(), 0,
      'no longer waiting for a successor');
  } finally {
    await context.close();
  }
});

test('an official records a visit on the phone, and the demand collected enters the loop', { timeout: 120_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'jy.official', { viewport: PHONE, isMobile: true, hasTouch: true });
  try {
    const before = await figures(page);
    await goOk(page, '/visits/new');
    let w = await scrollWidth(page);
    assert.ok(w <= PHONE.width + 1, `/visits/new scrollWidth ${w} > ${PHONE.width + 1}`);

    const option = page.locator('#visit-point option', { hasText: ZHAO_POINT });
    assert.equal(await option.count(), 1, `${ZHAO_POINT} is offered`);
    assert.ok((await option.innerText()).startsWith('★'), 'his own point is starred');
    const pointId = await option.getAttribute('value');
    await page.locator('#visit-point').selectOption(pointId);
    await page.locator('#visit-kind').selectOption('forum');
    assert.equal((await page.locator('#visit-kind option:checked').innerText()).trim(), '座谈');
    const notes = unique('与村民代表座谈，了解冬季供暖和道路情况');
    await page.locator('#visit-notes').fill(notes);
    await page.locator('#visit-participants').fill('村党支部书记\n村民代表');
    const demandText = unique('村东头道路坑洼，雨天积水');
    await page.locator('#demand-category-1').selectOption('road_traffic');
    await page.locator('#demand-text-1').fill(demandText);

    const resp = await submit(page, page.locator('#save-visit'), '/visits/new');
    assert.equal(resp.status(), 303, `saving the visit answered ${resp.status()}`);
    const landed = new URL(page.url());
    const m = landed.pathname.match(/^\/visits\/(\d+)$/);
    assert.ok(m, `lands on the visit: ${page.url()}`);
    assert.equal(landed.searchParams.get('saved'), '1');
    const visitId = m[1];
    assert.ok(await page.locator('#ok-note').isVisible(), 'the page says the visit was recorded');
    assert.ok((await page.locator('h1').innerText()).includes('座谈'));
    const facts = await page.locator('#visit-facts').innerText();
    assert.ok(facts.includes(ZHAO), 'the visitor is named');
    assert.ok(facts.includes(notes), 'the notes are kept');
    assert.ok(facts.includes('村民代表'), 'the participants are kept');

    const demands = page.locator('#visit-demands tr[data-demand]');
    assert.equal(await demands.count(), 1, 'one demand collected');
    const demandId = await demands.getAttribute('data-demand');
    assert.equal(await demands.locator('a').getAttribute('href'), `/demands/${demandId}`);
    assert.ok((await demands.innerText()).includes(demandText.slice(0, 8)), 'the demand\'s title is shown');
    w = await scrollWidth(page);
    assert.ok(w <= PHONE.width + 1, `/visits/${visitId} scrollWidth ${w} > ${PHONE.width + 1}`);

    // The demand is in the loop, and the visit in his and the point's lists.
    await demands.locator('a').click();
    await page.waitForURL((u) => u.pathname === `/demands/${demandId}`);
    assert.ok((await page.locator('body').innerText()).includes(demandText.slice(0, 8)), 'the demand page shows it');
    assert.equal((await page.locator('#status').innerText()).trim().length > 0, true, 'it has a status in the loop');
    await goOk(page, '/points');
    assert.equal(await page.locator(`#my-visits a[href="/visits/${visitId}"]`).count(), 1, 'under 我的走访');
    await goOk(page, `/points/${pointId}`);
    assert.equal(await page.locator(`#visits a[href="/visits/${visitId}"]`).count(), 1, 'on the point\'s page');
    assert.equal(await page.locator(`#point-demands a[href="/demands/${demandId}"]`).count(), 1, 'with its demand');

    const after = await figures(page);
    assert.equal(after.visits, before.visits + 1, 'the district view counts the visit');
    assert.equal(after.demands, before.demands + 1, 'and the demand');
  } finally {
    await context.close();
  }
});

/** Fill the visit form for a visit dated tomorrow and send it. */
async function futureVisit(page, notes) {
  await goOk(page, '/visits/new');
  await page.locator('#visit-point').selectOption({ index: 1 });
  await page.locator('#visit-kind').selectOption('household');
  await page.locator('#visit-notes').fill(notes);
  await page.locator('#demand-text-1').fill(unique('不应保存的诉求'));
  const tomorrow = await page.locator('#visit-date').evaluate((el) => {
    const d = new Date(`${el.max}T00:00:00Z`);
    d.setUTCDate(d.getUTCDate() + 1);
    el.removeAttribute('max'); // the browser would refuse to send it otherwise
    el.value = d.toISOString().slice(0, 10);
    return el.value;
  });
  const resp = await submit(page, page.locator('#save-visit'), '/visits/new');
  return { resp, tomorrow };
}

test('a visit dated in the future is refused and nothing is saved', { timeout: 90_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'jy.official', { viewport: PHONE, isMobile: true, hasTouch: true });
  try {
    const before = await figures(page);
    const notes = unique('明天的走访');
    const { resp, tomorrow } = await futureVisit(page, notes);
    assert.equal(resp.status(), 422, `a future date answered ${resp.status()}`);
    assert.equal(new URL(page.url()).pathname, '/visits/new', 'still on the form');
    assert.ok(await page.locator('#form-error').isVisible(), 'the refusal is explained');
    assert.equal(await page.locator('#visit-notes').inputValue(), notes, 'what was typed is kept');
    assert.equal(await page.locator('#visit-date').inputValue(), tomorrow);
    const after = await figures(page);
    assert.deepEqual(after, before, 'no visit and no demand was saved');
    await goOk(page, '/points');
    assert.ok(!(await page.locator('#my-visits').innerText()).includes(tomorrow), 'no visit dated tomorrow');
  } finally {
    await context.close();
  }
});

test('refusals and warnings on the contact pages are in Chinese (and in English once switched)', { timeout: 90_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'jy.official');
  try {
    let { resp } = await futureVisit(page, unique('明天的走访'));
    assert.equal(resp.status(), 422);
    const error = (await page.locator('#form-error .error').innerText()).trim();
    assert.equal(error, '走访日期不能晚于今天。');

    await goOk(page, '/governance');
    const warnings = await page.locator('#warnings li').evaluateAll((lis) => lis.map((li) => ({
      code: li.className,
      label: li.querySelector('.badge').textContent.trim(),
      detail: li.querySelector('.muted').textContent.trim(),
    })));
    assert.ok(warnings.length >= 2, `the demo raises warnings: ${JSON.stringify(warnings)}`);
    for (const w of warnings) {
      assert.ok(!HAS_LATIN_WORD.test(w.label), `a warning's label is in Chinese: "${w.label}"`);
      assert.ok(!HAS_LATIN_WORD.test(w.detail), `a warning's detail is in Chinese: "${w.detail}"`);
      assert.ok(w.detail.length > 0, `${w.code} has a detail`);
    }
    const behind = warnings.find((w) => w.code === 'warning-visits_behind');
    assert.ok(behind, 'the demo has a point behind on visits');
    assert.match(behind.detail, /^已走访 \d+ 次，按规则应达 \d+ 次$/, behind.detail);

    // The same refusal in English after the switch.
    await Promise.all([page.waitForEvent('load'), page.locator('a#lang-en').click()]);
    ({ resp } = await futureVisit(page, unique('tomorrow')));
    assert.equal(resp.status(), 422);
    assert.equal((await page.locator('#form-error .error').innerText()).trim(), 'A visit cannot be dated in the future.');
    await goOk(page, '/governance');
    const details = await page.locator('#warnings li .muted').allInnerTexts();
    for (const d of details) assert.ok(!/[\u4e00-\u9fff]/.test(d), `a warning's detail is in English: "${d}"`);
  } finally {
    await context.close();
  }
});

test('the district view in English', { timeout: 60_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'admin');
  try {
    await goOk(page, '/governance');
    const zh = { visits: await stat(page, 'stat-visits'), demands: await stat(page, 'stat-demands') };
    await Promise.all([page.waitForEvent('load'), page.locator('a#lang-en').click()]);
    assert.equal(new URL(page.url()).pathname, '/governance', 'the switch comes back to the page');
    assert.equal(await page.locator('html').getAttribute('lang'), 'en');
    assert.equal((await page.locator('h1').innerText()).trim(), 'Contact points: the whole picture');
    const headline = (await page.locator('#headline').innerText()).trim();
    const m = headline.match(/^(\d+) officials, (\d+) visits, (\d+) demands collected$/);
    assert.ok(m, `English headline: "${headline}"`);
    assert.equal(Number(m[2]), zh.visits);
    assert.equal(Number(m[3]), zh.demands);
    assert.equal((await page.locator('#officials-table th').first().innerText()).trim(), 'Officials');
    assert.equal((await page.locator('#export-officials').innerText()).trim(), 'Export officials (CSV)');
    assert.ok(!/[\u4e00-\u9fff]/.test(await page.locator('#gov-summary').innerText()), 'the summary has no Chinese labels');
  } finally {
    await context.close();
  }
});

test('the officials and points exports are CSV with a BOM and a header row', { timeout: 60_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'admin', { acceptDownloads: true });
  try {
    await goOk(page, '/governance');
    const officials = await stat(page, 'stat-officials');
    const visits = await stat(page, 'stat-visits');
    const pointCount = await page.locator('#gov-points-table tbody tr').count();

    const [dl] = await Promise.all([page.waitForEvent('download'), page.locator('#export-officials').click()]);
    assert.ok(dl.suggestedFilename().endsWith('.csv'), dl.suggestedFilename());
    let bytes = await readFile(await dl.path());
    assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'starts with a UTF-8 BOM');
    let rows = parseCsv(bytes.toString('utf8').replace(/^\uFEFF/, '')).filter((r) => r.some((c) => c !== ''));
    assert.deepEqual(rows[0].slice(0, 4), ['领导干部', '职务', '联系点数', '走访次数'], `header: ${rows[0]}`);
    assert.equal(rows.length - 1, officials, 'one row per official');
    assert.equal(rows.slice(1).reduce((s, r) => s + Number(r[3]), 0), visits, 'the visits add up');
    assert.ok(rows.some((r) => r[0] === ZHAO), `${ZHAO} is in the export`);

    const [dl2] = await Promise.all([page.waitForEvent('download'), page.locator('#export-points').click()]);
    bytes = await readFile(await dl2.path());
    assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf], 'starts with a UTF-8 BOM');
    rows = parseCsv(bytes.toString('utf8').replace(/^\uFEFF/, '')).filter((r) => r.some((c) => c !== ''));
    assert.deepEqual(rows[0].slice(0, 3), ['联系点', '优先级', '联系领导'], `header: ${rows[0]}`);
    assert.equal(rows.length - 1, pointCount, 'one row per point');
    const riders = rows.find((r) => r[0] === RIDERS);
    assert.ok(riders, `${RIDERS} is in the export`);
    assert.equal(riders[2], '', 'with nobody linked');
  } finally {
    await context.close();
  }
});
