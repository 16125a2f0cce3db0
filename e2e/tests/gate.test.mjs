// The rider gate pass (新通码) end to end, in two headless Chromiums:
// the rider's phone shows its QR at /pass; the QR is captured, written as a Y4M
// video and fed to a second browser as its camera; the gate page /gate/scan reads
// it and the server lets the rider in, once (the same code again is a replay).
//
// The whole test runs within the code's validity (its 30-second step, give or take
// one), so capture and scan follow each other quickly.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import {
  CHROMIUM_ARGS,
  CHROMIUM_PATH,
  PHONE,
  launchBrowser,
  newContext,
  submitLogin,
  url,
} from '../lib/helpers.mjs';
import { writeFakeCamera } from '../lib/fake-camera.mjs';

const QR_SELECTOR = '#pass-qr[data-qr^="LX1:"]';
const BASE45_PASS = /^LX1:[0-9A-Z $%*+\-./:]+$/;

let phone; // browser 1: the rider's phone
let gate; // browser 2: the gate tablet, with a fake camera (launched in the test)
let dir;

before(async () => {
  phone = await launchBrowser();
  dir = await mkdtemp(join(tmpdir(), 'lianxin-gate-e2e-'));
});
after(async () => {
  await gate?.close();
  await phone?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** New context logged in as `username`, then opened at `path`. */
async function pageAt(browser, username, path, opts = {}) {
  const context = await newContext(browser, opts);
  const page = await context.newPage();
  const login = await submitLogin(page, username);
  assert.ok(login.status() < 400, `login as ${username}: POST /login answered ${login.status()}`);
  const resp = await page.goto(url(path));
  assert.ok(resp && resp.status() < 400, `${username}: GET ${path} answered ${resp && resp.status()}`);
  return { context, page };
}

/** Seconds left in the QR's current step, read from the page's countdown. */
async function secondsLeft(page) {
  const text = (await page.locator('#pass-countdown').textContent()) || '';
  const m = text.match(/\d+/);
  return m ? Number(m[0]) : 30;
}

/** The device key pair as pass.js keeps it in IndexedDB, examined in the page. */
async function examineDeviceKey(page) {
  return page.evaluate(async () => {
    const db = await new Promise((resolve, reject) => {
      const r = indexedDB.open('lianxin-pass');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const rec = await new Promise((resolve, reject) => {
      const r = db.transaction('keys').objectStore('keys').get('device');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    db.close();
    if (!rec || !rec.privateKey) return { found: false };
    let pkcs8 = 'exported';
    try {
      await crypto.subtle.exportKey('pkcs8', rec.privateKey);
    } catch (e) {
      pkcs8 = `rejected (${e.name})`;
    }
    const pub = new Uint8Array(await crypto.subtle.exportKey('raw', rec.publicKey));
    return {
      found: true,
      type: rec.privateKey.type,
      algorithm: rec.privateKey.algorithm.name,
      extractable: rec.privateKey.extractable,
      usages: rec.privateKey.usages,
      pkcs8,
      publicKeyHex: Array.from(pub, (b) => b.toString(16).padStart(2, '0')).join(''),
    };
  });
}

test('the rider pass QR, shown to the gate camera, lets the rider in once', { timeout: 150_000 }, async () => {
  // ----- 1. The rider's phone -----
  const rider = await pageAt(phone, 'rider', '/pass', { viewport: PHONE });
  const consoleLines = [];
  rider.page.on('console', (m) => consoleLines.push(m.text()));
  try {
    const p = rider.page;
    try {
      await p.waitForSelector(QR_SELECTOR, { timeout: 20_000 });
    } catch (e) {
      const status = await p.locator('#pass-status').textContent().catch(() => '?');
      assert.fail(`/pass showed no QR within 20 s; #pass-status says: ${status}`);
    }

    // The device key: non-extractable Ed25519, never exportable as PKCS#8.
    const key = await examineDeviceKey(p);
    assert.ok(key.found, 'pass.js keeps the device key in IndexedDB lianxin-pass/keys/device');
    assert.equal(key.algorithm, 'Ed25519');
    assert.equal(key.type, 'private');
    assert.equal(key.extractable, false, 'the private key is non-extractable');
    assert.deepEqual(key.usages, ['sign']);
    assert.match(key.pkcs8, /^rejected/, 'exporting the private key as PKCS#8 must fail');

    // Capture early in a step, so that the code stays valid through the scans
    // (a gate takes the step give or take one).
    if ((await secondsLeft(p)) < 10) {
      const step = await p.getAttribute('#pass-qr', 'data-step');
      await p.waitForFunction(
        (s) => document.querySelector('#pass-qr').getAttribute('data-step') !== s,
        step,
        { timeout: 15_000 },
      );
    }

    // The phone layout: no sideways scroll, the whole code on the screen.
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= PHONE.width + 1, `/pass scrollWidth ${width} > ${PHONE.width + 1}`);
    const code = p.locator('#pass-qr svg, #pass-qr canvas, #pass-qr img').first();
    const box = await code.boundingBox();
    assert.ok(box, 'the QR is rendered');
    assert.ok(box.x >= 0 && box.x + box.width <= PHONE.width, `the QR fits the phone's width: ${JSON.stringify(box)}`);
    assert.ok(box.width >= 200, `the QR is large: ${box.width} px`);

    // ----- 2. Capture -----
    let qr;
    let png;
    for (let attempt = 0; attempt < 3; attempt++) {
      const before = await p.getAttribute('#pass-qr', 'data-step');
      png = await code.screenshot();
      qr = await p.getAttribute('#pass-qr', 'data-qr');
      if ((await p.getAttribute('#pass-qr', 'data-step')) === before) break;
    }
    // No personal data: Base45 of a pseudonymous ticket, a step and a signature.
    assert.match(qr, BASE45_PASS, 'the QR text is LX1: + Base45');
    assert.ok(qr.length < 600, `the QR text is ${qr.length} characters`);
    assert.ok(!consoleLines.some((l) => l.includes(qr.slice(4, 40)) || l.includes(key.publicKeyHex)),
      'pass.js logs neither the QR text nor the key');

    const video = join(dir, 'pass.y4m');
    await writeFakeCamera(png, video);

    // ----- 3. The gate, with the QR as its camera -----
    gate = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [
        ...CHROMIUM_ARGS,
        '--use-fake-device-for-media-stream',
        '--use-fake-ui-for-media-stream',
        `--use-file-for-fake-video-capture=${video}`,
      ],
    });
    const g = await pageAt(gate, 'gate', '/gate/scan', { viewport: { width: 1024, height: 768 } });
    const scans = [];
    g.page.on('response', async (r) => {
      if (r.request().method() === 'POST' && new URL(r.url()).pathname === '/api/v1/gate/scan') {
        scans.push({ status: r.status(), body: await r.json().catch(() => null) });
      }
    });
    const gp = g.page;
    try {
      try {
        await gp.waitForSelector('#gate-result[data-outcome]', { timeout: 30_000 });
      } catch (e) {
        const status = await gp.locator('#gate-status').textContent().catch(() => '?');
        assert.fail(`the gate showed no outcome within 30 s; #gate-status says: ${status}; scans: ${JSON.stringify(scans)}`);
      }
      const outcome = await gp.getAttribute('#gate-result', 'data-outcome');
      const reason = await gp.getAttribute('#gate-result', 'data-reason');
      assert.equal(outcome, 'pass', `the gate answered ${outcome} (${reason}); scans: ${JSON.stringify(scans)}`);
      assert.match(await gp.locator('#gate-result').innerText(), /通行/);

      // The same code stays in front of the camera: it is sent once, so the gate
      // does not turn to "replayed" on its own.
      await gp.evaluate(() => {
        window.__gateOutcomes = [];
        const r = document.getElementById('gate-result');
        new MutationObserver(() => window.__gateOutcomes.push(r.getAttribute('data-outcome')))
          .observe(r, { attributes: true, attributeFilter: ['data-outcome'] });
      });
      await gp.waitForTimeout(4_000);
      const seen = await gp.evaluate(() => window.__gateOutcomes);
      assert.ok(!seen.includes('deny'), `the gate flipped to deny by itself: ${JSON.stringify(seen)}`);
      assert.equal(scans.length, 1, `one scan request for one code, not ${scans.length}: ${JSON.stringify(scans)}`);

      // A fresh gate page (it forgets what it sent) shows the same code again:
      // the server refuses the replay.
      await gp.reload();
      await gp.waitForSelector('#gate-result[data-outcome]', { timeout: 30_000 });
      assert.equal(await gp.getAttribute('#gate-result', 'data-outcome'), 'deny',
        `the replayed code was not refused; scans: ${JSON.stringify(scans)}`);
      assert.equal(await gp.getAttribute('#gate-result', 'data-reason'), 'replayed');
      assert.match(await gp.locator('#gate-result').innerText(), /禁止通行/);
    } finally {
      await g.context.close();
    }
  } finally {
    await rider.context.close();
  }
});
