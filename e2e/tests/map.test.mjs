// The rider-friendly map (/map) and the mall directories (/malls, /malls/{id}),
// public pages, against `lianxin demo` (synthetic stations of 玉龙街道, the 青山区
// circle, Tongliao malls; every name ends with （示例）).
//
// map.js exposes window.lianxinMap.setOrigin(lat, lon) (a Promise, resolved once
// the list and the circle are drawn); #station-list carries data-state and
// data-origin. mall.js keeps #mall-hits[data-state][data-q].
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { DESKTOP, PHONE, launchBrowser, newContext, goOk, scrollWidth, url } from '../lib/helpers.mjs';

let browser;
before(async () => {
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
});

/** Fails the test on a page error, a failed request or a 4xx/5xx of our own server. */
function watch(page) {
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on('response', (r) => {
    if (r.status() >= 400 && r.url().startsWith(url('/'))) problems.push(`${r.status()} ${r.url()}`);
  });
  return problems;
}

/** Waits for /map to have drawn its layers and its first list. */
async function mapReady(page) {
  await page.waitForSelector('#map[data-ready=true]', { timeout: 20_000 });
  await page.waitForSelector('#station-list[data-state=done]', { timeout: 20_000 });
}

/** The cards of #station-list as data. */
async function cards(page) {
  return page.locator('#station-list .station-card').evaluateAll((els) => els.map((e) => ({
    code: e.getAttribute('data-code'),
    open: e.getAttribute('data-open'),
    distance: Number(e.getAttribute('data-distance')),
    amenities: (e.getAttribute('data-amenities') || '').split(',').filter(Boolean),
    badges: Array.from(e.querySelectorAll('.sc-amenities .badge')).map((b) => b.getAttribute('data-amenity')),
    text: e.innerText,
  })));
}

test('/map on a phone: filters, nearest open stations with a charger, the 15-minute circle', { timeout: 90_000 }, async () => {
  const context = await newContext(browser, { viewport: PHONE, hasTouch: true, isMobile: true });
  try {
    const page = await context.newPage();
    const problems = watch(page);
    await goOk(page, '/map');
    assert.match(await page.locator('h1').innerText(), /地图/);
    await mapReady(page);

    // The map: no tile server, so no image at all; station markers and outlines drawn as SVG.
    const markers = page.locator('#map path.station-marker');
    assert.ok((await markers.count()) >= 5, `station markers on the map: ${await markers.count()}`);
    assert.ok(Number(await page.getAttribute('#map', 'data-stations')) >= 5, 'the layers hold stations');
    assert.equal(await page.locator('#map img').count(), 0, 'no image (no tiles, no default icons)');
    assert.equal(await page.locator('.leaflet-control-attribution').count(), 0, 'no attribution without tiles');
    const labels = await page.locator('#map .leaflet-tooltip').allInnerTexts();
    assert.ok(labels.some((l) => /[\u4e00-\u9fff]/.test(l)), `Chinese labels on the map: ${labels.slice(0, 5)}`);
    assert.ok((await page.locator('#station-list .station-card').count()) >= 1, 'the district centre gives a first list');

    // The phone layout: the map is most of the screen's height, nothing scrolls sideways.
    const box = await page.locator('#map').boundingBox();
    assert.ok(box.height >= PHONE.height * 0.5 && box.height <= PHONE.height * 0.75, `map height ${box.height}`);
    assert.ok(box.width <= PHONE.width, `map width ${box.width}`);
    assert.ok((await scrollWidth(page)) <= PHONE.width + 1, 'no sideways scroll on a phone');

    // Filters: charging, open now. Each tick re-queries; wait for the last one.
    await page.locator('input[name=amenity][value=charging]').check();
    await page.locator('#open-now').check();
    await page.waitForSelector('#station-list[data-state=done]');

    // A starting point set through the page's hook (a tap also works, see below).
    const origin = { lat: 42.2851, lon: 118.9262 };
    await page.evaluate(({ lat, lon }) => window.lianxinMap.setOrigin(lat, lon), origin);
    assert.equal(await page.getAttribute('#station-list', 'data-origin'), `${origin.lat},${origin.lon}`);
    const list = await cards(page);
    assert.ok(list.length >= 1, 'some open station with a charger is near the centre');
    for (const c of list) {
      assert.equal(c.open, 'true', `${c.code} is open now`);
      assert.ok(c.amenities.includes('charging'), `${c.code} has charging: ${c.amenities}`);
      assert.ok(c.badges.includes('charging'), `${c.code} shows its charging badge`);
      assert.match(c.text, /开放中/, `${c.code} says it is open`);
      assert.match(c.text, /\d+(\.\d)? ?(米|公里)/, `${c.code} shows a distance: ${c.text}`);
    }
    const d = list.map((c) => c.distance);
    assert.deepEqual(d, [...d].sort((a, b) => a - b), `nearest first: ${d}`);

    // The 15-minute circle and what lies in it.
    assert.equal(await page.locator('#map path.within-circle').count(), 1, 'one travel-time circle');
    const summary = page.locator('#within-summary');
    assert.ok(await summary.isVisible(), 'the circle summary is shown');
    assert.match(await summary.locator('h2').innerText(), /15 分钟/);
    assert.ok(Number(await summary.getAttribute('data-radius')) > 0, 'the circle has a radius');
    const counts = await summary.locator('.stat .stat-value').allInnerTexts();
    assert.equal(counts.length, 4, `four counts: ${counts}`);
    for (const n of counts) assert.match(n, /^\d+$/);

    // E-bike: a wider circle.
    const walkRadius = Number(await summary.getAttribute('data-radius'));
    await page.locator('#map-mode').selectOption('ebike');
    await page.waitForFunction((r) => Number(document.getElementById('within-summary').getAttribute('data-radius')) > r, walkRadius);
    assert.match(await summary.locator('h2').innerText(), /电动车/);

    // A tap on the map moves the starting point.
    const before = await page.getAttribute('#station-list', 'data-origin');
    // (bottom left, away from the zoom buttons; a marker there would open its popup instead)
    await page.locator('#map').scrollIntoViewIfNeeded();
    const mapBox = await page.locator('#map').boundingBox();
    const spot = await page.evaluate(({ x, y, w, h }) => {
      const busy = '.station-marker, .compound-marker, .gate-marker, .mall-icon, .leaflet-control, .leaflet-tooltip, .leaflet-popup';
      for (let i = 0; i < 40; i++) {
        const px = x + 30 + (i % 8) * (w / 10);
        const py = y + h - 30 - Math.floor(i / 8) * 40;
        const e = document.elementFromPoint(px, py);
        if (e && e.closest('#map') && !e.closest(busy)) return { px, py };
      }
      return { px: x + 30, py: y + h - 30 };
    }, { x: mapBox.x, y: mapBox.y, w: mapBox.width, h: mapBox.height });
    await page.mouse.click(spot.px, spot.py);
    await page.waitForFunction((b) => {
      const l = document.getElementById('station-list');
      return l.getAttribute('data-state') === 'done' && l.getAttribute('data-origin') !== b;
    }, before);
    assert.equal(await page.locator('#map path.origin-marker').count(), 1, 'the starting point is marked');

    assert.deepEqual(problems, [], `no errors on /map: ${problems.join('; ')}`);
  } finally {
    await context.close();
  }
});

test('/malls on a desk: a mall\'s floors, live search by pinyin initials, and the search without JavaScript', { timeout: 90_000 }, async () => {
  const context = await newContext(browser, { viewport: DESKTOP });
  let mallPath;
  let shop;
  try {
    const page = await context.newPage();
    const problems = watch(page);
    await goOk(page, '/malls');
    const links = await page.locator('a.mall-link').evaluateAll((as) => as.map((a) => a.getAttribute('href')));
    assert.ok(links.length >= 1, 'the demo has malls');
    assert.ok((await page.locator('a.mall-link').first().innerText()).includes('示例'), 'demo malls are labelled 示例');

    // The first mall; the demo puts a 星巴克 in a Tongliao mall's directory (the
    // first one with it is used if the first mall has none).
    await page.locator('a.mall-link').first().click();
    await page.waitForSelector('#mall-search');
    for (const href of links) {
      if (new URL(page.url()).pathname !== href) await goOk(page, href);
      if ((await page.locator('li.merchant[data-shop^="星巴克"]').count()) > 0) { mallPath = href; break; }
    }
    assert.ok(mallPath, `no demo mall lists 星巴克 (tried ${links.join(', ')})`);

    // Floors as sections with zones; entrances and parking at the top.
    assert.ok((await page.locator('section.floor[data-floor]').count()) >= 2, 'several floors');
    assert.ok((await page.locator('section.floor .zone[data-zone]').count()) >= 2, 'zones within floors');
    assert.ok(await page.locator('#mall-parking').isVisible(), 'entrances and parking are shown');
    const row = page.locator('li.merchant[data-shop^="星巴克"]').first();
    shop = await row.evaluate((li) => ({
      name: li.getAttribute('data-shop'),
      floor: li.closest('section.floor').getAttribute('data-floor'),
      zone: li.closest('.zone').getAttribute('data-zone'),
    }));

    // Live search: pinyin initials.
    await page.locator('#mall-search').fill('xbk');
    await page.waitForSelector('#mall-hits[data-state=done][data-q=xbk]');
    const hit = page.locator(`#mall-hits .hit[data-shop="${shop.name}"]`).first();
    await hit.waitFor();
    assert.equal(await hit.locator('.hit-floor').innerText(), shop.floor);
    assert.equal(await hit.locator('.hit-zone').innerText(), shop.zone);
    assert.match(await hit.innerText(), new RegExp(`${shop.floor}\\s*·\\s*${shop.zone}`));
    const fontSize = await hit.locator('.hit-where').evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
    assert.ok(fontSize >= 20, `floor and zone in large type: ${fontSize}px`);
    assert.ok(await row.evaluate((li) => li.classList.contains('is-hit')), 'the row is highlighted in the floor list');
    assert.match(page.url(), /[?&]q=xbk/, 'the address keeps the query');

    // Clearing the box clears the hits.
    await page.locator('#mall-search').fill('');
    await page.waitForSelector('#mall-hits[data-state=idle]', { state: 'attached' });
    assert.equal(await page.locator('#mall-hits .hit').count(), 0);

    assert.deepEqual(problems, [], `no errors on the mall page: ${problems.join('; ')}`);
  } finally {
    await context.close();
  }

  // Without JavaScript: the form is a GET and the server lists the hits.
  const plain = await newContext(browser, { viewport: PHONE, javaScriptEnabled: false });
  try {
    const page = await plain.newPage();
    await goOk(page, mallPath);
    await page.locator('#mall-search').fill('星巴克');
    await Promise.all([page.waitForURL(/[?&]q=/), page.locator('#mall-search-form button[type=submit]').click()]);
    const hit = page.locator(`#mall-hits .hit[data-shop="${shop.name}"]`).first();
    assert.equal(await hit.locator('.hit-floor').innerText(), shop.floor);
    assert.equal(await hit.locator('.hit-zone').innerText(), shop.zone);
    assert.ok((await page.locator(`li.merchant.is-hit[data-shop="${shop.name}"]`).count()) >= 1, 'the server highlights the row');
    assert.ok((await scrollWidth(page)) <= PHONE.width + 1, 'no sideways scroll on a phone');
    // The map says it needs JavaScript.
    await goOk(page, '/map');
    assert.ok(await page.locator('#map-nojs').isVisible(), '/map without JavaScript shows its notice');
  } finally {
    await plain.close();
  }
});

test('/map and /malls in English', { timeout: 60_000 }, async () => {
  const context = await newContext(browser, { viewport: DESKTOP });
  try {
    const page = await context.newPage();
    const problems = watch(page);
    await page.goto(url('/lang?to=en&back=/map'));
    await page.waitForURL((u) => u.pathname === '/map');
    assert.equal(await page.getAttribute('html', 'lang'), 'en');
    assert.match(await page.title(), /Rider station map/);
    assert.match(await page.locator('h1').innerText(), /map/i);
    assert.match(await page.locator('#map-filters').innerText(), /Open now only/);
    assert.match(await page.locator('#map-filters').innerText(), /Charging/);
    await mapReady(page);
    assert.match(await page.locator('#within-summary h2').innerText(), /within 15 minutes/i);
    const first = page.locator('#station-list .station-card').first();
    assert.match(await first.innerText(), /(Open now|Closed)/);
    assert.match(await first.innerText(), /\d+(\.\d)? (m|km)/);

    await goOk(page, '/malls');
    assert.match(await page.locator('h1').innerText(), /Mall directories/);
    assert.deepEqual(problems, [], `no errors: ${problems.join('; ')}`);
  } finally {
    await context.close();
  }
});

test('a mall on a phone: the directory fits the screen and the search finds the shop', { timeout: 60_000 }, async () => {
  const context = await newContext(browser, { viewport: PHONE });
  try {
    const page = await context.newPage();
    await goOk(page, '/malls');
    const first = page.locator('a[href^="/malls/"]').first();
    const href = await first.getAttribute('href');
    await goOk(page, `${href}?q=mdl`);
    const hit = page.locator('#mall-hits .hit').first();
    await hit.waitFor();
    assert.match(await hit.innerText(), /麦当劳/);
    assert.match(await hit.innerText(), /B1/);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `horizontal overflow of ${overflow}px on a phone`);
  } finally {
    await context.close();
  }
});
