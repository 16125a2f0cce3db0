// Community work under 双进双服务 in a real browser: the household-visit coverage of
// 开元社区's grids as a heat table and its CSV, the needs list (ky.worker posts a need,
// a registered member claims it, it is completed with hours and shows in the member's
// service record), 双进 registration (a member registered once, the same member
// refused the second time), a household put in a second grid refused, read-only
// access for an official, and the needs list on a phone.
//
// Writes to the shared server: one need (posted, claimed, completed) and one member
// registration in 开元社区. Nothing else is changed (the refused forms save nothing).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  launchBrowser, newContext, loggedInPage, url, PHONE, submit, goOk, scrollWidth, downloadCsv,
} from '../lib/helpers.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const KY = '150207.BYXL.KY';
const KY_NAME = '开元社区';
const G01 = `${KY}.G01`;
const G02 = `${KY}.G02`;
/** A household of grid 1 (the demo builds 1号楼 in grid 1; see docs/guide/community.md). */
const G01_HOUSEHOLD = `${KY}.G01.B01.H1011`;

/** A text unique to this run. */
function unique(text) {
  return `${text}（测试 ${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}）`;
}

/** "64.58%" for 31 of 48, as the pages write a share. */
function shareText(visited, households) {
  return households === 0 ? '—' : `${((visited / households) * 100).toFixed(2)}%`;
}

/** The hue of a heat cell's background (0 red … 120 green), or null for grey. */
function hueOf(style) {
  const m = /hsl\((\d+(?:\.\d+)?),/.exec(style || '');
  return m ? Number(m[1]) : null;
}

/** The coverage card of one community: its figures and its grid rows. */
async function coverageCard(page, code) {
  const card = page.locator(`section.community-coverage[id="community-${code}"]`);
  assert.equal(await card.count(), 1, `a coverage card for ${code}`);
  const grids = await card.locator('table.heat tbody tr').evaluateAll((trs) => trs.map((tr) => {
    const td = tr.querySelectorAll('td');
    return {
      code: tr.dataset.grid,
      name: tr.querySelector('th').textContent.trim(),
      households: Number(td[0].textContent.trim()),
      visited: Number(td[1].textContent.trim()),
      share: td[2].textContent.trim(),
      style: td[2].getAttribute('style'),
      heat: td[2].classList.contains('heat-cell'),
    };
  }));
  const summary = (await card.locator('p.muted').innerText()).trim();
  const m = summary.match(/^已走访 (\d+) \/ 户数 (\d+)$/);
  assert.ok(m, `the card's summary: "${summary}"`);
  return {
    name: (await card.locator('h2').innerText()).trim(),
    share: (await card.locator('h2 .badge').innerText()).trim(),
    visited: Number(m[1]),
    households: Number(m[2]),
    grids,
  };
}

/** The list on /needs: [{ id, status, text }]. */
async function needs(page) {
  return page.locator('#needs li.need').evaluateAll((lis) => lis.map((li) => ({
    id: li.dataset.id, status: li.dataset.status, text: li.textContent.replace(/\s+/g, ' ').trim(),
  })));
}

/** The options of a claim form: [{ id, name, star, skills: [] }]. */
async function claimOptions(li) {
  return li.locator('form.claim-form select[name=person_id] option').evaluateAll((os) => os
    .filter((o) => o.value !== '')
    .map((o) => {
      const text = o.textContent.trim();
      const m = text.match(/^(.*?)( ★)?(?: \((.*)\))?$/);
      return { id: o.value, name: m[1].trim(), star: Boolean(m[2]), skills: m[3] ? m[3].split('、') : [] };
    }));
}

/** The party members the register form offers (living in 开元社区, not registered yet). */
async function unregisteredMembers(page) {
  await goOk(page, `/registrations?community=${KY}`);
  return page.locator('#register-form select[name=person_id] option').evaluateAll((os) => os
    .filter((o) => o.value !== '')
    .map((o) => ({ id: o.value, name: o.textContent.split(' · ')[0].trim() })));
}

test('coverage: 开元社区\'s grids as a heat table whose shares add up, and the CSV export', { timeout: 90_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'ky.worker', { acceptDownloads: true });
  try {
    await Promise.all([page.waitForEvent('load'), page.locator('#nav-coverage').click()]);
    assert.equal(new URL(page.url()).pathname, '/coverage');
    assert.equal(await page.locator('#cm-nav-coverage[aria-current=page]').count(), 1, 'the section nav marks the page');
    // ky.worker's scope is 开元社区: the only community offered.
    const places = await page.locator('#coverage-filter select[name=place] option').evaluateAll((os) =>
      os.filter((o) => o.value).map((o) => o.value));
    assert.deepEqual(places, [KY], 'only 开元社区 is in ky.worker\'s scope');

    const card = await coverageCard(page, KY);
    assert.ok(card.name.startsWith(KY_NAME), card.name);
    assert.deepEqual(card.grids.map((g) => g.code).sort(), [G01, G02], 'both grids are listed');
    // The demo puts 开元社区's 48 households in its two grids.
    assert.equal(card.households, 48, 'the demo\'s 48 households');
    assert.equal(card.grids.reduce((s, g) => s + g.households, 0), card.households, 'the grids\' households add up');
    assert.equal(card.grids.reduce((s, g) => s + g.visited, 0), card.visited, 'the grids\' visited add up');
    assert.equal(card.share, shareText(card.visited, card.households), 'the community share is visited ÷ households');
    for (const g of card.grids) {
      assert.ok(g.visited <= g.households, `${g.name}: visited ≤ households`);
      assert.equal(g.share, shareText(g.visited, g.households), `${g.name}'s share`);
      assert.ok(g.heat, `${g.name}'s share is a heat cell`);
      const hue = hueOf(g.style);
      assert.ok(hue !== null, `${g.name} is coloured: ${g.style}`);
      assert.ok(Math.abs(hue - (120 * g.visited) / g.households) <= 0.5, `${g.name}: the colour follows the share (hue ${hue})`);
    }
    const [g1, g2] = [card.grids.find((g) => g.code === G01), card.grids.find((g) => g.code === G02)];
    assert.ok(g1.visited > 0 && g2.visited > 0, 'members visited both grids this quarter');
    assert.ok(hueOf(g1.style) > hueOf(g2.style), 'grid 1 (visited more) is greener than grid 2');
    // The totals over the scope are the community's (one community in scope).
    assert.equal((await page.locator('#total-households').innerText()).trim(), String(card.households));
    assert.equal((await page.locator('#total-visited').innerText()).trim(), String(card.visited));
    assert.equal((await page.locator('#total-share').innerText()).trim(), card.share);
    const from = await page.locator('#coverage-filter input[name=from]').inputValue();
    const to = await page.locator('#coverage-filter input[name=to]').inputValue();
    assert.ok((await page.locator('#period').innerText()).includes(`${from} ~ ${to}`), 'the period is stated');

    // The CSV: one row per grid, the community's total, the grand total, the period on each.
    const csv = await downloadCsv(page, page.locator('#export-csv'));
    assert.ok(csv.name.endsWith('.csv'), csv.name);
    assert.deepEqual(csv.rows[0], ['社区', '网格编码', '网格', '户数', '已走访', '覆盖率', '统计期'], `header: ${csv.rows[0]}`);
    const body = csv.rows.slice(1);
    assert.equal(body.length, card.grids.length + 2, `grids, a community total and a grand total: ${JSON.stringify(body)}`);
    for (const g of card.grids) {
      const row = body.find((r) => r[1] === g.code);
      assert.ok(row, `${g.code} is in the CSV`);
      assert.deepEqual(row, [KY_NAME, g.code, g.name, String(g.households), String(g.visited), g.share, `${from} ~ ${to}`]);
    }
    assert.deepEqual(body.find((r) => r[2] === '社区合计'),
      [KY_NAME, '', '社区合计', String(card.households), String(card.visited), card.share, `${from} ~ ${to}`]);
    assert.deepEqual(body[body.length - 1],
      ['合计', '', '', String(card.households), String(card.visited), card.share, `${from} ~ ${to}`]);

    // This year, as a preset: the same households, at least as many visited.
    await Promise.all([page.waitForEvent('load'), page.locator('#preset-year').click()]);
    assert.match(await page.locator('#coverage-filter input[name=from]').inputValue(), /^\d{4}-01-01$/);
    const year = await coverageCard(page, KY);
    assert.equal(year.households, card.households);
    assert.ok(year.visited >= card.visited, `the year (${year.visited}) covers the quarter (${card.visited})`);

    // A period that ends before it starts is refused on the page, in Chinese.
    const r = await page.goto(url(`/coverage?from=${to}&to=${from}`));
    if (from !== to) {
      assert.equal(r.status(), 422);
      assert.equal((await page.locator('#form-error .error').innerText()).trim(), '统计期须先开始后结束，且不超过两年。');
    }
  } finally {
    await context.close();
  }
});

test('needs: ky.worker posts a need, a registered member claims it, it is completed with hours', { timeout: 120_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'ky.worker');
  try {
    await Promise.all([page.waitForEvent('load'), page.locator('#nav-needs').click()]);
    assert.equal(new URL(page.url()).pathname, '/needs');
    const before = await needs(page);
    for (const s of ['open', 'claimed', 'done']) {
      assert.ok(before.some((n) => n.status === s), `the demo list has a ${s} need`);
    }

    // Post.
    const title = unique('帮独居老人更换厨房水龙头');
    const form = page.locator('#post-need-form');
    await form.locator('select[name=community_code]').selectOption(KY);
    await form.locator('select[name=grid_code]').selectOption(G01);
    await form.locator('input[name=title]').fill(title);
    await form.locator('input[name=skills]').fill('水电维修');
    await form.locator('textarea[name=detail]').fill('2号楼1单元，老人白天在家');
    let resp = await submit(page, form.locator('button[type=submit]'), '/needs');
    assert.equal(resp.status(), 303, `posting answered ${resp.status()}`);
    let here = new URL(page.url());
    assert.equal(here.searchParams.get('done'), 'posted');
    assert.equal(here.searchParams.get('community'), KY);
    assert.equal((await page.locator('#done-note').innerText()).trim(), '需求已发布。');
    const li = page.locator('#needs li.need', { hasText: title });
    assert.equal(await li.count(), 1, 'the new need is listed');
    const id = await li.getAttribute('data-id');
    const need = page.locator(`#needs li.need[data-id="${id}"]`);
    assert.equal(await need.getAttribute('data-status'), 'open');
    assert.equal((await need.locator('.status').innerText()).trim(), '待认领');
    const info = await need.innerText();
    assert.ok(info.includes('开元社区第一网格'), 'with its grid');
    assert.ok(info.includes('技能特长: 水电维修'), 'and the skill it takes');

    // Who may claim: the members registered with 开元社区.
    const options = await claimOptions(need);
    assert.ok(options.length >= 20, `the demo's 20 registered members are offered: ${options.length}`);
    const plumber = options.find((o) => o.skills.includes('水电维修'));
    assert.ok(plumber, 'a registered member who does 水电维修');

    // Someone not registered with the community cannot claim it, even by a forged choice.
    const outsider = (await unregisteredMembers(page))[0];
    assert.ok(outsider, 'a party member of 开元社区 who is not registered');
    await goOk(page, `/needs?community=${KY}`);
    await need.locator('select[name=person_id] option').nth(1).evaluate((o, v) => { o.value = v; }, outsider.id);
    await need.locator('select[name=person_id]').selectOption({ index: 1 });
    resp = await submit(page, need.locator('form.claim-form button[type=submit]'), `/needs/${id}/claim`);
    assert.equal(resp.status(), 422, `a claim for someone not registered answered ${resp.status()}`);
    assert.equal((await page.locator('#form-error .error').innerText()).trim(), '只有在本社区报到的党员才能认领该需求。');
    await goOk(page, `/needs?community=${KY}`);
    assert.equal(await need.getAttribute('data-status'), 'open', 'still open after the refusal');

    // The member's record before.
    await goOk(page, `/service-records?person=${plumber.id}`);
    const doneBefore = Number((await page.locator('#record-done').innerText()).trim());
    const hoursBefore = Number((await page.locator('#record-hours').innerText()).trim());

    // Claim on the member's behalf.
    await goOk(page, `/needs?community=${KY}`);
    await need.locator('select[name=person_id]').selectOption(plumber.id);
    resp = await submit(page, need.locator('form.claim-form button[type=submit]'), `/needs/${id}/claim`);
    assert.equal(resp.status(), 303, `claiming answered ${resp.status()}`);
    assert.equal(new URL(page.url()).searchParams.get('done'), 'claimed');
    assert.equal((await page.locator('#done-note').innerText()).trim(), '已认领。');
    assert.equal(await need.getAttribute('data-status'), 'claimed');
    assert.ok((await need.innerText()).includes(`认领人: ${plumber.name}`), 'the claimer is named');
    assert.equal(await need.locator('form.claim-form').count(), 0, 'no more claiming');
    assert.equal(await need.locator('form.complete-form').count(), 1, 'it can be completed');

    // Hours out of range are refused (the browser would stop them; the server must too).
    const complete = need.locator('form.complete-form');
    await complete.evaluate((f) => { f.noValidate = true; });
    await complete.locator('input[name=hours]').fill('120');
    await complete.locator('input[name=outcome]').fill('已更换');
    resp = await submit(page, complete.locator('button[type=submit]'), `/needs/${id}/complete`);
    assert.equal(resp.status(), 422, `120 hours answered ${resp.status()}`);
    assert.equal((await page.locator('#form-error .error').innerText()).trim(), '服务时长须大于 0、不超过 100 小时。');
    assert.equal(await need.getAttribute('data-status'), 'claimed', 'still claimed');

    // Completed with hours and an outcome.
    const outcome = '已更换水龙头并检查管路，老人满意';
    await complete.locator('input[name=hours]').fill('2.5');
    await complete.locator('input[name=outcome]').fill(outcome);
    resp = await submit(page, complete.locator('button[type=submit]'), `/needs/${id}/complete`);
    assert.equal(resp.status(), 303, `completing answered ${resp.status()}`);
    here = new URL(page.url());
    assert.equal(here.searchParams.get('done'), 'completed');
    assert.equal((await page.locator('#done-note').innerText()).trim(), '已记录完成。');
    assert.equal(await need.getAttribute('data-status'), 'done');
    assert.equal((await need.locator('.status').innerText()).trim(), '已完成');
    const doneText = await need.innerText();
    assert.ok(doneText.includes('2.5 小时'), `the hours are shown: ${doneText}`);
    assert.ok(doneText.includes(outcome), 'and the outcome');
    assert.equal(await need.locator('form').count(), 0, 'nothing left to do');

    // The member's service record counts it.
    await goOk(page, `/service-records?person=${plumber.id}`);
    assert.equal(Number((await page.locator('#record-done').innerText()).trim()), doneBefore + 1);
    assert.equal(Number((await page.locator('#record-hours').innerText()).trim()), hoursBefore + 2.5);
    assert.ok((await page.locator('#record-needs').innerText()).includes(title.slice(0, 10)), 'the need is on the record');
  } finally {
    await context.close();
  }
});

test('needs: ★ marks the members whose skills match each open need', async () => {
  const { context, page } = await loggedInPage(browser, 'ky.worker');
  try {
    await goOk(page, `/needs?community=${KY}&status=open`);
    const open = page.locator('#needs li.need[data-status=open]');
    const n = await open.count();
    assert.ok(n >= 2, `the demo has several open needs: ${n}`);
    for (let i = 0; i < n; i++) {
      const li = open.nth(i);
      const m = (await li.innerText()).match(/技能特长: ([^\n]+?)(?:\s|$)/);
      const skills = m ? m[1].split('、') : [];
      for (const o of await claimOptions(li)) {
        const matches = o.skills.some((s) => skills.includes(s));
        assert.equal(o.star, matches, `need ${await li.getAttribute('data-id')} (${skills}): ${o.name} (${o.skills}) starred=${o.star}`);
      }
    }
  } finally {
    await context.close();
  }
});

test('registrations: the 双进 list, a member registered, the same member refused a second time', { timeout: 120_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'ky.worker');
  try {
    await goOk(page, '/needs');
    await Promise.all([page.waitForEvent('load'), page.locator('#cm-nav-registrations').click()]);
    assert.equal(new URL(page.url()).pathname, '/registrations');
    assert.equal(await page.locator('#registrations-filter select[name=community] option:checked').getAttribute('value'), KY);
    const rows = page.locator('#registrations tbody tr');
    const total = await rows.count();
    const heading = (await page.locator('#registrations').locator('xpath=ancestor::section').locator('h2').innerText()).trim();
    assert.ok(heading.includes(`(${total})`), `the heading counts the rows: "${heading}" vs ${total}`);
    const kinds = await rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.kind));
    assert.ok(kinds.filter((k) => k === 'member').length >= 20, `the demo's 20 members: ${kinds}`);
    assert.ok(kinds.filter((k) => k === 'org').length >= 2, 'and two party organisations');

    // Filter by kind and by skill.
    await page.locator('#registrations-filter select[name=kind]').selectOption('org');
    await Promise.all([page.waitForEvent('load'), page.locator('#registrations-filter button[type=submit]').click()]);
    const orgKinds = await page.locator('#registrations tbody tr').evaluateAll((trs) => trs.map((tr) => tr.dataset.kind));
    assert.ok(orgKinds.length >= 2 && orgKinds.every((k) => k === 'org'), `only organisations: ${orgKinds}`);
    await goOk(page, `/registrations?community=${KY}&skill=${encodeURIComponent('法律咨询')}`);
    const withSkill = await page.locator('#registrations tbody tr').evaluateAll((trs) =>
      trs.map((tr) => [...tr.querySelectorAll('.badge')].map((b) => b.textContent.trim())));
    assert.ok(withSkill.length >= 1 && withSkill.length < total, `some, not all, do 法律咨询: ${withSkill.length} of ${total}`);
    for (const skills of withSkill) assert.ok(skills.includes('法律咨询'), `each listed member does 法律咨询: ${skills}`);

    // Register a member who is not registered yet; a second tab has the same form open.
    const [member] = await unregisteredMembers(page);
    assert.ok(member, 'a party member to register');
    const stale = await context.newPage();
    await stale.goto(url(`/registrations?community=${KY}`));
    const fill = async (p) => {
      const f = p.locator('#register-form');
      await f.locator('select[name=kind]').selectOption('member');
      await f.locator('select[name=person_id]').selectOption(member.id);
      await f.locator('select[name=grid_code]').selectOption(G02);
      await f.locator('input[name=employer_code]').fill('JY-SWJ');
      await f.locator('input[name=skills]').fill('水电维修、助老助残');
      return f;
    };
    let form = await fill(page);
    let resp = await submit(page, form.locator('button[type=submit]'), '/registrations');
    assert.equal(resp.status(), 303, `registering answered ${resp.status()}`);
    assert.equal(new URL(page.url()).searchParams.get('done'), 'registered');
    assert.equal((await page.locator('#done-note').innerText()).trim(), '已登记。');
    const row = page.locator('#registrations tbody tr', { has: page.locator(`a[href="/service-records?person=${member.id}"]`) });
    assert.equal(await row.count(), 1, `${member.name} is listed once`);
    const cells = await row.locator('td').allInnerTexts();
    assert.equal(cells[0].trim(), '党员');
    assert.equal(cells[1].trim(), '开元社区第二网格');
    assert.equal(cells[2].trim(), '包头市九原区水务局', 'the employer by its code');
    assert.deepEqual((await row.locator('.badge').allInnerTexts()).map((s) => s.trim()), ['水电维修', '助老助残']);
    assert.equal(await page.locator(`#register-form select[name=person_id] option[value="${member.id}"]`).count(), 0,
      'no longer offered for registration');

    // The same member again, from the stale tab: refused, explained, nothing saved.
    form = await fill(stale);
    resp = await submit(stale, form.locator('button[type=submit]'), '/registrations');
    assert.equal(resp.status(), 422, `registering twice answered ${resp.status()}`);
    assert.ok(await stale.locator('#form-error').isVisible(), 'the refusal is on the page');
    assert.equal((await stale.locator('#form-error .error').innerText()).trim(),
      '该党员（党组织）在这段时间已在其他社区报到。同一时间只能在一个社区报到，请先结束原有登记。');
    await goOk(page, `/registrations?community=${KY}`);
    assert.equal(await row.count(), 1, `${member.name} is still registered once`);

    // Now registered, the member may claim the community's needs.
    await goOk(page, `/needs?community=${KY}&status=open`);
    const first = page.locator('#needs li.need[data-status=open]').first();
    assert.ok((await claimOptions(first)).some((o) => o.id === member.id), `${member.name} is offered on the claim form`);
  } finally {
    await context.close();
  }
});

test('a household already in one grid cannot be put in a second one', { timeout: 90_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'ky.worker');
  try {
    await goOk(page, `/coverage?place=${KY}`);
    const before = await coverageCard(page, KY);
    // The household is a real one of grid 1.
    await goOk(page, `/places?q=${encodeURIComponent(G01_HOUSEHOLD)}`);
    assert.ok((await page.locator('main').innerText()).includes(G01_HOUSEHOLD), `${G01_HOUSEHOLD} exists`);

    await goOk(page, `/registrations?community=${KY}`);
    const form = page.locator('#assign-form');
    assert.equal(await form.count(), 1, 'the page offers putting a household in a grid');
    await form.locator('input[name=household_code]').fill(G01_HOUSEHOLD);
    await form.locator('select[name=grid_code]').selectOption(G02);
    let resp = await submit(page, form.locator('button[type=submit]'), '/grid-households');
    assert.equal(resp.status(), 422, `a second grid answered ${resp.status()}`);
    assert.equal((await page.locator('#form-error .error').innerText()).trim(),
      '该户在这段时间已属于另一个网格。一户同一时间只能在一个网格，请先结束原有划分。');

    // The same grid again is refused too, with its own reason.
    await form.locator('input[name=household_code]').fill(G01_HOUSEHOLD);
    await form.locator('select[name=grid_code]').selectOption(G01);
    resp = await submit(page, form.locator('button[type=submit]'), '/grid-households');
    assert.equal(resp.status(), 422, `the same grid answered ${resp.status()}`);
    assert.equal((await page.locator('#form-error .error').innerText()).trim(), '该户在这段时间已在此网格。');

    // Nothing moved.
    await goOk(page, `/coverage?place=${KY}`);
    const after = await coverageCard(page, KY);
    assert.deepEqual(after.grids.map((g) => [g.code, g.households]), before.grids.map((g) => [g.code, g.households]));
  } finally {
    await context.close();
  }
});

test('an official reads the community pages but gets no forms; a resident may not open them', { timeout: 90_000 }, async () => {
  const official = await loggedInPage(browser, 'jy.official');
  const resident = await loggedInPage(browser, 'resident');
  try {
    const page = official.page;
    await goOk(page, '/coverage');
    const places = await page.locator('#coverage-filter select[name=place] option').evaluateAll((os) =>
      os.filter((o) => o.value).map((o) => o.value));
    assert.ok(places.includes(KY) && places.length > 1, `the district's communities: ${places}`);
    assert.equal(await page.locator(`section.community-coverage[id="community-${KY}"]`).count(), 1);
    await goOk(page, '/needs');
    assert.ok((await page.locator('#needs li.need').count()) >= 1, 'the needs are listed');
    assert.equal(await page.locator('#needs form').count(), 0, 'no claim or complete forms');
    assert.equal(await page.locator('#post-need').count(), 0, 'no form to post a need');
    await goOk(page, `/registrations?community=${KY}`);
    assert.ok((await page.locator('#registrations tbody tr').count()) >= 1);
    assert.equal(await page.locator('#register-form, #assign-form, form.end-form').count(), 0, 'no registration forms');

    for (const path of ['/coverage', '/needs', '/registrations']) {
      const r = await resident.page.goto(url(path));
      assert.equal(r.status(), 403, `a resident on ${path}: ${r.status()}`);
    }
    assert.equal(await resident.page.locator('#nav-coverage, #nav-needs').count(), 0, 'and has no links to them');
  } finally {
    await official.context.close();
    await resident.context.close();
  }
});

test('the needs list fits a phone screen', { timeout: 60_000 }, async () => {
  const { context, page } = await loggedInPage(browser, 'ky.worker', { viewport: PHONE, isMobile: true, hasTouch: true });
  try {
    for (const path of ['/coverage', '/needs']) {
      await goOk(page, path);
      await page.waitForLoadState('load');
      const w = await scrollWidth(page);
      assert.ok(w <= PHONE.width + 1, `${path} scrollWidth ${w} > ${PHONE.width + 1}`);
    }
    assert.ok((await page.locator('#needs li.need').count()) >= 1, 'with needs on it');
    const claim = page.locator('#needs form.claim-form').first();
    assert.ok(await claim.isVisible(), 'a claim form is on the phone page');
    const box = await claim.locator('button[type=submit]').boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width + 1, `the claim button is on screen: ${JSON.stringify(box)}`);
  } finally {
    await context.close();
  }
});
