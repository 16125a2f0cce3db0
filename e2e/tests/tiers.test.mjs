// Organisation tiers (抓两头、带中间) in a real browser: the board's three tiers, each
// organisation's score with the evidence it rests on, the CSV export; the lagging
// 二道沙河西村党支部 with its improvement plan (one action done, one overdue, one open),
// an action added and the overdue one marked done; an indicator of 120 refused on the
// page; an official who may read everything and change nothing.
//
// Writes to the shared server: one action added to 二道沙河西村党支部's plan, and its
// overdue action marked done (a fresh demo is needed for the "one overdue" start).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launchBrowser, loggedInPage, url, submit, goOk, downloadCsv, logoutCsrf, BASE_URL,
} from '../lib/helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

// The demo assesses the current year (Asia/Shanghai).
const YEAR = Number(new Intl.DateTimeFormat('en-CA', { timeZone: 'Asia/Shanghai', year: 'numeric' }).format(new Date()));
const LAGGING = '二道沙河西村党支部';
const LAGGING_CODE = 'JY-BYXL-EDSHX';
const PLAN = `二道沙河西村党支部整顿提升方案（${YEAR}）`;
const TIERS = [['advanced', '先进'], ['middle', '中间'], ['lagging', '后进']];

/** A text unique to this run. */
function unique(text) {
  return `${text}（测试 ${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}）`;
}

async function statValue(page, id) {
  return Number((await page.locator(`#${id} .stat-value`).innerText()).trim());
}

/** The thresholds the page states: { advanced, lagging }. */
async function thresholds(page) {
  const text = (await page.locator('#tiers-thresholds').innerText()).trim();
  const m = text.match(/≥(\d+(?:\.\d+)?) 为先进，<(\d+(?:\.\d+)?) 为后进/);
  assert.ok(m, `the thresholds are stated: "${text}"`);
  return { advanced: Number(m[1]), lagging: Number(m[2]) };
}

/** The organisations of one column of the board, with their evidence. */
async function column(page, key) {
  return page.locator(`#tier-${key} details.tier-org`).evaluateAll((ds) => ds.map((d) => ({
    id: d.id.replace('tier-org-', ''),
    name: d.querySelector('summary a').textContent.trim(),
    href: d.querySelector('summary a').getAttribute('href'),
    score: Number(d.querySelector('.tier-score').textContent.trim()),
    indicators: [...d.querySelectorAll('table.evidence tbody tr')].map((tr) => ({
      name: tr.querySelector('th').textContent.trim(),
      value: Number(tr.querySelector('td.num').textContent.trim()),
      note: tr.querySelector('td.note').textContent.trim(),
    })),
    badges: [...d.querySelectorAll('.badges .badge')].map((b) => b.textContent.trim()),
  })));
}

function mean(values) {
  return values.reduce((s, v) => s + v, 0) / values.length;
}

/** The plan's actions on an organisation page: [{ id, status, label, title }]. */
async function actions(page) {
  return page.locator('#plans ul.actions li[data-status]').evaluateAll((lis) => lis.map((li) => ({
    id: li.id.replace('action-', ''),
    status: li.dataset.status,
    label: li.querySelector('.badge').textContent.trim(),
    red: li.querySelector('.badge').classList.contains('badge-red'),
    text: li.textContent.replace(/\s+/g, ' ').trim(),
  })));
}

/** The lagging branch's page id, found on the board. */
async function laggingId(page) {
  await goOk(page, `/tiers?year=${YEAR}`);
  const link = page.locator('#tier-lagging details.tier-org summary a', { hasText: LAGGING });
  assert.equal(await link.count(), 1, `${LAGGING} is in the lagging column`);
  const m = (await link.getAttribute('href')).match(/^\/tiers\/org\/(\d+)\?year=(\d+)$/);
  assert.ok(m, 'it links to its page');
  return m[1];
}

test('the board: three tiers, every score with its evidence, and the CSV export', { timeout: 90_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'admin', { acceptDownloads: true });
  try {
    await Promise.all([page.waitForEvent('load'), page.locator('#nav-tiers').click()]);
    assert.equal(new URL(page.url()).pathname, '/tiers');
    await goOk(page, `/tiers?year=${YEAR}`);
    const th = await thresholds(page);
    assert.ok(th.lagging < th.advanced, `lagging below advanced: ${JSON.stringify(th)}`);

    const columns = {};
    for (const [key, label] of TIERS) {
      const heading = (await page.locator(`#tier-${key}-title`).innerText()).trim();
      assert.ok(heading.startsWith(label), `the ${key} column is headed ${label}: "${heading}"`);
      const orgs = await column(page, key);
      columns[key] = orgs;
      assert.ok(orgs.length >= 1, `the demo has ${label} organisations`);
      assert.equal(Number((await page.locator(`#tier-${key}-title .badge`).innerText()).trim()), orgs.length, `${label}: the badge counts the column`);
      assert.equal(await statValue(page, `count-${key}`), orgs.length, `${label}: the summary counts the column`);
      for (const o of orgs) {
        // The evidence: the indicators, each with a note, whose mean is the score.
        assert.ok(o.indicators.length >= 1, `${o.name} shows its indicators`);
        for (const i of o.indicators) {
          assert.ok(i.value >= 0 && i.value <= 100, `${o.name} · ${i.name}: ${i.value}`);
          assert.ok(i.note.length > 0, `${o.name} · ${i.name} has its evidence`);
        }
        assert.ok(Math.abs(mean(o.indicators.map((i) => i.value)) - o.score) < 0.051,
          `${o.name}: the score ${o.score} is the mean of its indicators`);
        const fits = key === 'advanced' ? o.score >= th.advanced
          : key === 'lagging' ? o.score < th.lagging
            : o.score >= th.lagging && o.score < th.advanced;
        assert.ok(fits, `${o.name} (${o.score}) belongs in ${label}`);
      }
    }
    // Lagging organisations without a plan are flagged; the one with a plan shows it and its overdue action.
    for (const o of columns.lagging) {
      if (o.name === LAGGING) {
        assert.ok(o.badges.includes('整改方案 1 个'), `${LAGGING} has its plan: ${o.badges}`);
        assert.ok(o.badges.includes('逾期任务 1 项'), `and one overdue action: ${o.badges}`);
      } else {
        assert.ok(o.badges.includes('尚无整改方案'), `${o.name} needs a plan: ${o.badges}`);
      }
    }
    assert.ok(columns.lagging.some((o) => o.name === LAGGING), `${LAGGING} is lagging`);

    // The evidence opens under an organisation.
    const first = page.locator('#tier-advanced details.tier-org').first();
    assert.equal(await first.locator('table.evidence').isVisible(), false, 'closed at first');
    await first.locator('summary').click({ position: { x: 2, y: 2 } });
    assert.ok(await first.locator('table.evidence').isVisible(), 'the evidence shows once opened');
    assert.match((await first.locator('p.small.muted').innerText()).trim(), /^得分 \d+\.\d = \d+ 项指标的平均分$/);

    const unassessed = await page.locator('#tier-not-assessed li').count();
    assert.equal(await statValue(page, 'count-unassessed'), unassessed, 'the not-assessed organisations are listed');

    // The export: one line per indicator, the tier and score and evidence on each.
    const csv = await downloadCsv(page, page.locator('#export-csv'));
    assert.equal(csv.name, `tiers-${YEAR}.csv`);
    assert.deepEqual(csv.rows[0], ['组织代码', '组织', '年度', '等次', '得分', '指标', '分值', '依据', '标准（先进/后进）', '命名表彰'],
      `header: ${csv.rows[0]}`);
    const body = csv.rows.slice(1);
    const assessed = Object.values(columns).flat();
    assert.equal(new Set(body.map((r) => r[0])).size, assessed.length + unassessed, 'every organisation is in the export');
    assert.equal(body.filter((r) => r[5] !== '').length, assessed.reduce((s, o) => s + o.indicators.length, 0), 'one line per indicator');
    const lagging = body.filter((r) => r[0] === LAGGING_CODE);
    const shown = columns.lagging.find((o) => o.name === LAGGING);
    assert.equal(lagging.length, shown.indicators.length, `${LAGGING}: a line per indicator`);
    for (const r of lagging) {
      assert.deepEqual(r.slice(1, 5), [LAGGING, String(YEAR), '后进', shown.score.toFixed(1)]);
      const i = shown.indicators.find((x) => x.name === r[5]);
      assert.ok(i, `${r[5]} is one of the indicators shown`);
      assert.equal(Number(r[6]), i.value);
      assert.equal(r[7], i.note, 'with its evidence');
      assert.equal(r[8], `≥${th.advanced} / <${th.lagging}`);
    }
  } finally {
    await context.close();
  }
});

test('the lagging branch: its plan, an action added, the overdue one done; a value of 120 refused', { timeout: 120_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'admin');
  try {
    const id = await laggingId(page);
    await page.locator('#tier-lagging details.tier-org summary a', { hasText: LAGGING }).click();
    await page.waitForURL((u) => u.pathname === `/tiers/org/${id}`);
    assert.ok((await page.locator('h1').innerText()).includes(LAGGING));
    assert.equal((await page.locator('#standing-label').innerText()).trim(), '后进');
    assert.match((await page.locator('#standing-score').innerText()).trim(), /^得分 \d+\.\d$/);
    const scoreBefore = (await page.locator('#standing-score').innerText()).trim();
    const evidence = await page.locator('#standing table.evidence tbody tr').count();
    assert.ok(evidence >= 1, 'the evidence is on the page');

    // The plan: one done, one overdue, one open.
    const plan = page.locator('#plans article', { hasText: PLAN });
    assert.equal(await plan.count(), 1, 'the improvement plan is shown');
    const planId = (await plan.getAttribute('id')).replace('plan-', '');
    let list = await actions(page);
    assert.deepEqual(list.map((a) => a.status).sort(), ['done', 'open', 'overdue'], `one of each: ${JSON.stringify(list)}`);
    const byStatus = Object.fromEntries(list.map((a) => [a.status, a]));
    assert.equal(byStatus.done.label, '已完成');
    assert.equal(byStatus.overdue.label, '已逾期');
    assert.ok(byStatus.overdue.red, 'the overdue action is red');
    assert.equal(byStatus.open.label, '进行中');
    assert.ok(byStatus.done.text.includes('经党员大会选举补选支委2名'), 'the done action says what was done');
    assert.ok((await plan.locator('h3').innerText()).includes('已完成 1/3'));
    assert.equal(await page.locator(`#action-${byStatus.done.id} form`).count(), 0, 'a done action cannot be marked again');

    // Add an action, due in a month.
    const today = await page.locator(`#action-${byStatus.open.id} input[name=done_on]`).getAttribute('max');
    assert.match(today, /^\d{4}-\d\d-\d\d$/);
    const due = new Date(`${today}T00:00:00Z`);
    due.setUTCDate(due.getUTCDate() + 30);
    const dueText = due.toISOString().slice(0, 10);
    const title = unique('组织党员到先进村学习观摩');
    const add = plan.locator(`form[action="/tiers/plans/${planId}/actions"]`);
    await plan.locator(`details.action:has(form[action="/tiers/plans/${planId}/actions"]) > summary`).click();
    await add.locator('input[name=title]').fill(title);
    await add.locator('input[name=due_on]').fill(dueText);
    let resp = await submit(page, add.locator('button[type=submit]'), `/tiers/plans/${planId}/actions`);
    assert.equal(resp.status(), 303, `adding an action answered ${resp.status()}`);
    assert.equal(new URL(page.url()).searchParams.get('ok'), 'action');
    assert.equal((await page.locator('#tiers-ok').innerText()).trim(), '任务已添加。');
    list = await actions(page);
    const added = list.find((a) => a.text.includes(title));
    assert.ok(added, 'the new action is listed');
    assert.equal(added.status, 'open');
    assert.ok(added.text.includes(dueText), 'with its due date');
    assert.ok((await plan.locator('h3').innerText()).includes('已完成 1/4'));

    // Mark the overdue action done.
    const overdue = page.locator(`#action-${byStatus.overdue.id}`);
    await overdue.locator('details.action summary').click();
    const note = '已建立月度“三会一课”计划和台账，街道党工委已检查';
    await overdue.locator('textarea[name=note]').fill(note);
    resp = await submit(page, overdue.locator('button[type=submit]'), `/tiers/actions/${byStatus.overdue.id}/done`);
    assert.equal(resp.status(), 303, `marking done answered ${resp.status()}`);
    assert.equal((await page.locator('#tiers-ok').innerText()).trim(), '任务已标记完成。');
    assert.equal(await overdue.getAttribute('data-status'), 'done');
    assert.equal((await overdue.locator('.badge').innerText()).trim(), '已完成');
    assert.ok((await overdue.innerText()).includes(note), 'what was done is recorded');
    assert.equal(await overdue.locator('form').count(), 0);
    assert.ok((await plan.locator('h3').innerText()).includes('已完成 2/4'));

    // The board no longer flags an overdue action.
    await goOk(page, `/tiers?year=${YEAR}`);
    const card = (await column(page, 'lagging')).find((o) => o.name === LAGGING);
    assert.ok(!card.badges.some((b) => b.startsWith('逾期任务')), `no overdue badge now: ${card.badges}`);

    // A value of 120 is refused, explained, and the form keeps what was typed.
    await goOk(page, `/tiers/org/${id}?year=${YEAR}`);
    const form = page.locator('#indicators-form');
    await form.evaluate((f) => { f.noValidate = true; });
    const before = await form.locator('input[name=value_0]').inputValue();
    await form.locator('input[name=value_0]').fill('120');
    resp = await submit(page, form.locator('button[type=submit]'), `/tiers/org/${id}/indicators`);
    assert.equal(resp.status(), 422, `a value of 120 answered ${resp.status()}`);
    assert.ok(await page.locator('#form-error').isVisible(), 'the refusal is on the page');
    assert.ok((await page.locator('#form-error').innerText()).includes('分值须为 0 到 100 之间的数字。'));
    assert.equal(await page.locator('#indicators-form input[name=value_0]').inputValue(), '120', 'what was typed is kept');
    assert.equal((await page.locator('#standing-score').innerText()).trim(), scoreBefore, 'the standing is unchanged');
    await goOk(page, `/tiers/org/${id}?year=${YEAR}`);
    assert.equal(await page.locator('#indicators-form input[name=value_0]').inputValue(), before, 'nothing was saved');
  } finally {
    await context.close();
  }
});

test('an official reads the tiers and the plan but gets no forms, and a forged change is refused', { timeout: 90_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'jy.official', { acceptDownloads: true });
  try {
    await goOk(page, `/tiers?year=${YEAR}`);
    for (const [key] of TIERS) assert.ok((await column(page, key)).length >= 1, `the official sees ${key} organisations`);
    assert.equal(await page.locator('#tier-import').count(), 0, 'no import form');
    const csv = await downloadCsv(page, page.locator('#export-csv'));
    assert.ok(csv.rows.length > 1, 'the official may export');

    const id = await laggingId(page);
    await goOk(page, `/tiers/org/${id}?year=${YEAR}`);
    assert.equal((await page.locator('#standing-label').innerText()).trim(), '后进');
    assert.ok((await page.locator('#standing table.evidence tbody tr').count()) >= 1, 'the evidence is shown');
    const plan = page.locator('#plans article', { hasText: PLAN });
    assert.equal(await plan.count(), 1, 'the plan is shown');
    const planId = (await plan.getAttribute('id')).replace('plan-', '');
    const count = (await actions(page)).length;
    assert.ok(count >= 3, 'with its actions');
    assert.equal(await page.locator('#indicators-form').count(), 0, 'no indicator form');
    assert.equal(await page.locator('#plans form').count(), 0, 'no action forms');
    assert.equal(await page.locator('#new-plan').count(), 0, 'no new-plan form');
    assert.equal(await page.locator('#designation-form').count(), 0, 'no designation form');

    // A change posted anyway, with the session's own token: 403, nothing added.
    const csrf = await logoutCsrf(page);
    assert.ok(csrf, 'the page has a CSRF token');
    const r = await page.request.post(url(`/tiers/plans/${planId}/actions`), {
      form: { csrf, title: 'forged', due_on: '2099-01-01' },
      headers: { Origin: BASE_URL },
      maxRedirects: 0,
    });
    assert.equal(r.status(), 403, `an official adding an action answered ${r.status()}`);
    await goOk(page, `/tiers/org/${id}?year=${YEAR}`);
    assert.equal((await actions(page)).length, count, 'nothing was added');

    // The same request from the organisation department gets past the permission check
    // (and, with no title, is refused as bad input): the 403 above was the role's.
    const admin = await loggedInPage(browser, 'admin');
    try {
      await goOk(admin.page, `/tiers/org/${id}?year=${YEAR}`);
      const r2 = await admin.page.request.post(url(`/tiers/plans/${planId}/actions`), {
        form: { csrf: await logoutCsrf(admin.page), title: '', due_on: '2099-01-01' },
        headers: { Origin: BASE_URL },
        maxRedirects: 0,
      });
      assert.equal(r2.status(), 422, `the organisation department's request without a title answered ${r2.status()}`);
    } finally {
      await admin.context.close();
    }
  } finally {
    await context.close();
  }
});
