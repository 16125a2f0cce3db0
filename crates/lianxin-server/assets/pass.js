// The rider's gate pass page (新通码), GET /pass.
//
// The phone keeps an Ed25519 device key pair in IndexedDB (db `lianxin-pass`, store
// `keys`, key `device`); the private key is generated non-extractable and is never
// exported. The server issues a ticket (COSE_Sign1) bound to the device's public key;
// every 30-second step this page signs a proof over the ticket and shows the QR text
//   "LX1:" + Base45(CBOR [ticket: bstr, step: uint, proof: bstr(64)])
// exactly as crates/lianxin-pass/src/qr.rs encodes it. The QR holds no personal
// data: the ticket names the rider by a pseudonym only.
//
// Needs the vendored qrcode-generator (global `qrcode`) loaded before it.
(function () {
  'use strict';

  var root = document.getElementById('pass');
  if (!root) return;

  var el = {
    compound: document.getElementById('pass-compound'),
    qr: document.getElementById('pass-qr'),
    countdown: document.getElementById('pass-countdown'),
    status: document.getElementById('pass-status'),
    bind: document.getElementById('pass-bind'),
  };

  var LANG = (root.getAttribute('data-lang') || document.documentElement.lang || 'zh')
    .toLowerCase().indexOf('en') === 0 ? 'en' : 'zh';

  var TEXT = {
    zh: {
      unsupported: '此浏览器无法生成通行码：需要支持 Ed25519 的新版浏览器，并通过 HTTPS 打开本页。',
      insecure: '此页面必须通过 HTTPS 打开才能生成通行码。',
      storage: '无法在本机保存设备密钥（浏览器存储不可用，可能是无痕模式）。',
      binding: '正在绑定本机…',
      bound: '本机已绑定。',
      bindFailed: '绑定本机失败：',
      loading: '正在获取通行证…',
      noOrder: '当前没有订单，暂无通行码。',
      noRider: '此账号未登记为骑手，无法使用通行码。',
      riderInactive: '骑手已停用，暂无通行码。',
      forbidden: '此账号无权使用通行码。',
      loggedOut: '登录已过期，请重新登录。',
      noDevice: '本机尚未绑定，请点击“绑定本机”。',
      otherDevice: '通行证已绑定到另一部手机。如要在本机使用，请点击“绑定本机”（另一部手机将失效）。',
      network: '网络异常，正在重试…',
      failed: '获取通行证失败：',
      signFailed: '生成通行码失败，请刷新页面。',
      qrFailed: '通行码过长，无法显示。',
      notYet: '通行证尚未生效。',
      refreshIn: function (s) { return s + ' 秒后刷新'; },
      qrLabel: '通行码',
      ready: '请向门岗出示此码。',
    },
    en: {
      unsupported: 'This browser cannot make a gate pass: it needs a recent browser with Ed25519 support, and this page must be opened over HTTPS.',
      insecure: 'This page must be opened over HTTPS to make a gate pass.',
      storage: 'Cannot keep the device key on this phone (browser storage is unavailable, perhaps a private window).',
      binding: 'Binding this phone…',
      bound: 'This phone is bound.',
      bindFailed: 'Could not bind this phone: ',
      loading: 'Fetching your pass…',
      noOrder: 'No current order, so no gate pass.',
      noRider: 'This account is not registered as a rider.',
      riderInactive: 'Your rider pass is suspended.',
      forbidden: 'This account may not use a gate pass.',
      loggedOut: 'Your session has expired; please log in again.',
      noDevice: 'This phone is not bound yet: tap “Bind this phone”.',
      otherDevice: 'Your pass is bound to another phone. To use this one, tap “Bind this phone” (the other phone stops working).',
      network: 'Network problem, retrying…',
      failed: 'Could not fetch your pass: ',
      signFailed: 'Could not make the code; please reload the page.',
      qrFailed: 'The code is too long to show.',
      notYet: 'The pass is not valid yet.',
      refreshIn: function (s) { return 'Refreshes in ' + s + ' s'; },
      qrLabel: 'Gate pass',
      ready: 'Show this code at the gate.',
    },
  }[LANG];

  var CSRF = root.getAttribute('data-csrf') || '';
  var DB_NAME = 'lianxin-pass';
  var STORE = 'keys';
  var KEY_ID = 'device';
  var ED25519 = { name: 'Ed25519' };
  var REFETCH_BEFORE_END = 60; // seconds before not_after
  var RETRY_SECONDS = 30;

  // ----- state -----
  var device = null; // { privateKey, publicKey, publicKeyHex, registered }
  var ticket = null; // { bytes, digest, compoundId, notBefore, notAfter, step, offset }
  var shownStep = null;
  var building = 0; // generation counter: only the latest build renders
  var fetching = false;
  var nextFetchAt = 0; // local ms; 0 = when needed
  var busy = false; // binding in progress
  var timer = null;

  function setStatus(text, kind) {
    if (!el.status) return;
    el.status.textContent = text || '';
    if (kind) el.status.setAttribute('data-kind', kind);
    else el.status.removeAttribute('data-kind');
  }

  function clearQr() {
    shownStep = null;
    building++;
    if (el.qr) {
      while (el.qr.firstChild) el.qr.removeChild(el.qr.firstChild);
      el.qr.removeAttribute('data-qr');
      el.qr.removeAttribute('data-step');
    }
    if (el.countdown) el.countdown.textContent = '';
  }

  // ----- bytes -----
  var HEX = '0123456789abcdef';
  function toHex(bytes) {
    var s = '';
    for (var i = 0; i < bytes.length; i++) s += HEX[bytes[i] >> 4] + HEX[bytes[i] & 15];
    return s;
  }

  function fromBase64(b64) {
    var bin = atob(b64);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function concat(parts) {
    var n = 0;
    parts.forEach(function (p) { n += p.length; });
    var out = new Uint8Array(n);
    var at = 0;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }

  // A non-negative integer (< 2^53) as 8 bytes, big-endian.
  function u64be(n) {
    var out = new Uint8Array(8);
    var hi = Math.floor(n / 4294967296);
    var lo = n >>> 0;
    new DataView(out.buffer).setUint32(0, hi >>> 0);
    new DataView(out.buffer).setUint32(4, lo);
    return out;
  }

  // CBOR head (major type, argument) with the minimal length, as ciborium writes it.
  function cborHead(major, n) {
    var m = major << 5;
    if (n < 24) return Uint8Array.of(m | n);
    if (n < 0x100) return Uint8Array.of(m | 24, n);
    if (n < 0x10000) return Uint8Array.of(m | 25, n >> 8, n & 0xff);
    if (n < 0x100000000) return Uint8Array.of(m | 26, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
    var out = new Uint8Array(9);
    out[0] = m | 27;
    out.set(u64be(n), 1);
    return out;
  }

  function cborPass(ticketBytes, step, proof) {
    return concat([
      Uint8Array.of(0x83),
      cborHead(2, ticketBytes.length), ticketBytes,
      cborHead(0, step),
      cborHead(2, proof.length), proof,
    ]);
  }

  // RFC 9285 Base45, as crates/lianxin-pass/src/base45.rs.
  var B45 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:';
  function base45(bytes) {
    var s = '';
    for (var i = 0; i + 1 < bytes.length; i += 2) {
      var n = bytes[i] * 256 + bytes[i + 1];
      s += B45[n % 45] + B45[Math.floor(n / 45) % 45] + B45[Math.floor(n / 2025)];
    }
    if (bytes.length % 2 === 1) {
      var b = bytes[bytes.length - 1];
      s += B45[b % 45] + B45[Math.floor(b / 45)];
    }
    return s;
  }

  var PROOF_LABEL = new TextEncoder().encode('LX1proof');

  function proofMessage(digest, step, compoundId) {
    return concat([PROOF_LABEL, digest, u64be(step), u64be(compoundId)]);
  }

  // Does the ticket name this public key? (The ticket's claims hold the device key
  // as a 32-byte CBOR byte string: 0x58 0x20 + key.)
  function ticketNamesKey(ticketBytes, pub) {
    var n = ticketBytes.length - pub.length;
    outer: for (var i = 2; i <= n; i++) {
      if (ticketBytes[i - 2] !== 0x58 || ticketBytes[i - 1] !== 0x20) continue;
      for (var j = 0; j < pub.length; j++) {
        if (ticketBytes[i + j] !== pub[j]) continue outer;
      }
      return true;
    }
    return false;
  }

  // ----- the device key in IndexedDB -----
  function openDb() {
    return new Promise(function (resolve, reject) {
      if (!window.indexedDB) { reject(new Error('no indexedDB')); return; }
      var req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = function () {
        if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
      };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
      req.onblocked = function () { reject(new Error('indexedDB blocked')); };
    });
  }

  function dbRequest(mode, fn) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var req = fn(tx.objectStore(STORE));
        var result;
        req.onsuccess = function () { result = req.result; };
        tx.oncomplete = function () { db.close(); resolve(result); };
        tx.onerror = function () { db.close(); reject(tx.error || req.error); };
        tx.onabort = function () { db.close(); reject(tx.error || new Error('aborted')); };
      });
    });
  }

  function loadRecord() {
    return dbRequest('readonly', function (s) { return s.get(KEY_ID); });
  }

  function saveRecord(rec) {
    return dbRequest('readwrite', function (s) { return s.put(rec, KEY_ID); });
  }

  async function deviceFromRecord(rec) {
    if (!rec || !rec.privateKey || !rec.publicKey) return null;
    var raw = new Uint8Array(await crypto.subtle.exportKey('raw', rec.publicKey));
    return {
      privateKey: rec.privateKey,
      publicKey: rec.publicKey,
      publicKeyBytes: raw,
      publicKeyHex: toHex(raw),
      registered: rec.registered === true,
    };
  }

  async function newDevice() {
    // extractable = false: the private key can never leave the browser. (A public
    // key is always exportable.)
    var pair = await crypto.subtle.generateKey(ED25519, false, ['sign', 'verify']);
    var rec = { privateKey: pair.privateKey, publicKey: pair.publicKey, registered: false, created: Date.now() };
    await saveRecord(rec);
    return deviceFromRecord(rec);
  }

  // ----- HTTP -----
  function api(method, path, body) {
    var init = {
      method: method,
      credentials: 'same-origin',
      cache: 'no-store',
      headers: { 'accept': 'application/json', 'x-csrf-token': CSRF },
    };
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (resp) {
      return resp.text().then(function (text) {
        var json = null;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = null; }
        return { status: resp.status, ok: resp.ok, json: json };
      });
    });
  }

  function errorOf(r) {
    var e = (r.json && r.json.error) || {};
    return { code: e.code || '', message: e.message || ('HTTP ' + r.status), field: e.field || null };
  }

  // Registers the device's public key (the server revokes the rider's other devices).
  async function register(dev) {
    setStatus(TEXT.binding);
    var r = await api('POST', '/api/v1/gate/my-device', { public_key: dev.publicKeyHex });
    if (r.status === 200 || r.status === 201) {
      dev.registered = true;
      try {
        await saveRecord({ privateKey: dev.privateKey, publicKey: dev.publicKey, registered: true, created: Date.now() });
      } catch (e) { /* the key stays usable; it would be registered again next time */ }
      setStatus(TEXT.bound, 'ok');
      return true;
    }
    if (r.status === 401) { setStatus(TEXT.loggedOut, 'error'); return false; }
    setStatus(TEXT.bindFailed + errorOf(r).message, 'error');
    return false;
  }

  // A new key pair for this phone, stored, then registered.
  async function bindNew() {
    device = await newDevice();
    return register(device);
  }

  // ----- the ticket -----
  async function fetchTicket(mayBind) {
    if (fetching) return;
    fetching = true;
    try {
      var sentAt = Date.now();
      var r;
      try {
        r = await api('GET', '/api/v1/gate/my-ticket');
      } catch (e) {
        setStatus(TEXT.network, 'error');
        nextFetchAt = Date.now() + 5000;
        return;
      }
      var gotAt = Date.now();
      if (r.status === 200 && r.json && typeof r.json.ticket === 'string') {
        var j = r.json;
        var bytes = fromBase64(j.ticket);
        var digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
        // Clock offset = server time - local time at the fetch (the middle of the
        // round trip). server_time is whole seconds (truncated: +0.5 on average), so
        // within a second of this phone's clock the difference is that rounding, not
        // a wrong clock: then the local clock (finer) is kept.
        var localAt = (sentAt + gotAt) / 2000;
        var offset = Number(j.server_time) + 0.5 - localAt;
        if (Math.abs(offset) < 1) offset = 0;
        ticket = {
          bytes: bytes,
          digest: digest,
          compoundId: Number(j.compound_id),
          notBefore: Number(j.not_before),
          notAfter: Number(j.not_after),
          step: Number(j.step_seconds) || 30,
          offset: offset,
        };
        // Near the order's end the server has no later ticket: ask again in a while,
        // not every second.
        nextFetchAt = ticket.notAfter - (gotAt / 1000 + offset) <= REFETCH_BEFORE_END ? gotAt + 20000 : 0;
        if (el.compound) {
          var name = j.compound_name || '';
          var code = j.compound || '';
          el.compound.textContent = name && code && name !== code ? name + '（' + code + '）' : (name || code);
        }
        if (device && !ticketNamesKey(bytes, device.publicKeyBytes)) {
          // Issued for another phone's key: this phone's proof would be refused.
          ticket = null;
          clearQr();
          setStatus(TEXT.otherDevice, 'error');
          nextFetchAt = Date.now() + RETRY_SECONDS * 1000;
          return;
        }
        shownStep = null; // a new ticket: redraw now
        setStatus(TEXT.ready);
        return;
      }
      var err = errorOf(r);
      if (r.status === 409 && err.field === 'device') {
        if (mayBind) {
          fetching = false;
          var ok = device && !device.registered ? await register(device) : await bindNew();
          if (ok) return fetchTicket(false);
          return;
        }
        ticket = null;
        clearQr();
        setStatus(TEXT.noDevice, 'error');
        nextFetchAt = Date.now() + RETRY_SECONDS * 1000;
        return;
      }
      ticket = null;
      clearQr();
      if (r.status === 409 && err.field === 'rider') {
        setStatus(TEXT.riderInactive, 'error');
        nextFetchAt = Date.now() + 5 * 60 * 1000;
      } else if (r.status === 404 && !/^rider\b/.test(err.message)) {
        setStatus(TEXT.noOrder);
        if (el.compound) el.compound.textContent = '';
        nextFetchAt = Date.now() + RETRY_SECONDS * 1000; // an order may come
      } else if (r.status === 404) {
        setStatus(TEXT.noRider, 'error');
        nextFetchAt = Date.now() + 5 * 60 * 1000;
      } else if (r.status === 401) {
        setStatus(TEXT.loggedOut, 'error');
        nextFetchAt = Infinity;
      } else if (r.status === 403) {
        setStatus(TEXT.forbidden + ' ' + err.message, 'error');
        nextFetchAt = Infinity;
      } else {
        setStatus(TEXT.failed + err.message, 'error');
        nextFetchAt = Date.now() + RETRY_SECONDS * 1000;
      }
    } finally {
      fetching = false;
    }
  }

  // ----- the QR -----
  function serverNow() {
    return Date.now() / 1000 + ticket.offset;
  }

  async function qrText(step) {
    var t = ticket;
    var msg = proofMessage(t.digest, step, t.compoundId);
    var proof = new Uint8Array(await crypto.subtle.sign(ED25519, device.privateKey, msg));
    return 'LX1:' + base45(cborPass(t.bytes, step, proof));
  }

  // The QR as an inline SVG with whole-pixel cells and a 4-cell white quiet zone,
  // as large as fits the container (a 390-px phone: cells of 4 px or more).
  function renderQr(text, step) {
    var qr = qrcode(0, 'M');
    qr.addData(text, 'Alphanumeric');
    qr.make();
    var count = qr.getModuleCount();
    var quiet = 4;
    var cells = count + 2 * quiet;
    var avail = Math.min(el.qr.clientWidth || 0, (document.documentElement.clientWidth || window.innerWidth) - 24);
    if (!(avail > 0)) avail = 320;
    var cell = Math.max(3, Math.min(10, Math.floor(avail / cells)));
    var size = cell * cells;
    var d = '';
    for (var r = 0; r < count; r++) {
      for (var c = 0; c < count; c++) {
        if (!qr.isDark(r, c)) continue;
        // Runs of dark cells in a row as one rectangle.
        var run = 1;
        while (c + run < count && qr.isDark(r, c + run)) run++;
        d += 'M' + (c + quiet) + ' ' + (r + quiet) + 'h' + run + 'v1h-' + run + 'z';
        c += run - 1;
      }
    }
    var NS = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('xmlns', NS);
    svg.setAttribute('viewBox', '0 0 ' + cells + ' ' + cells);
    svg.setAttribute('width', String(size));
    svg.setAttribute('height', String(size));
    svg.setAttribute('shape-rendering', 'crispEdges');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', TEXT.qrLabel);
    svg.setAttribute('class', 'pass-qr-code');
    var bg = document.createElementNS(NS, 'rect');
    bg.setAttribute('width', String(cells));
    bg.setAttribute('height', String(cells));
    bg.setAttribute('fill', '#fff');
    svg.appendChild(bg);
    var path = document.createElementNS(NS, 'path');
    path.setAttribute('d', d);
    path.setAttribute('fill', '#000');
    svg.appendChild(path);
    while (el.qr.firstChild) el.qr.removeChild(el.qr.firstChild);
    el.qr.appendChild(svg);
    el.qr.setAttribute('data-qr', text);
    el.qr.setAttribute('data-step', String(step));
  }

  async function show(step) {
    var gen = ++building;
    var text;
    try {
      text = await qrText(step);
    } catch (e) {
      if (gen === building) { clearQr(); setStatus(TEXT.signFailed, 'error'); }
      return;
    }
    if (gen !== building || !ticket) return; // superseded
    try {
      renderQr(text, step);
    } catch (e) {
      clearQr();
      setStatus(TEXT.qrFailed, 'error');
      return;
    }
    shownStep = step;
  }

  function tick() {
    if (busy || !device) return;
    var nowMs = Date.now();
    if (!ticket) {
      if (!fetching && nextFetchAt !== Infinity && nowMs >= nextFetchAt) fetchTicket(true).then(tick);
      return;
    }
    var now = serverNow();
    if (!fetching && now >= ticket.notAfter - REFETCH_BEFORE_END && nowMs >= nextFetchAt) {
      // Keep showing the current code while the next ticket comes.
      nextFetchAt = nowMs + 10000;
      fetchTicket(true).then(tick);
    }
    if (now >= ticket.notAfter) {
      clearQr();
      return;
    }
    var step = Math.floor(now / ticket.step);
    if (step !== shownStep) {
      shownStep = step;
      show(step);
    }
    if (now < ticket.notBefore) setStatus(TEXT.notYet);
    else if (el.status && el.status.textContent === TEXT.notYet) setStatus(TEXT.ready);
    if (el.countdown) {
      var left = Math.max(1, Math.ceil((step + 1) * ticket.step - now));
      el.countdown.textContent = TEXT.refreshIn(left);
    }
  }

  // Ticks just after each whole second of the server's clock, so the code changes
  // at the step's start and the countdown counts whole seconds.
  function startTimer() {
    if (timer) clearTimeout(timer);
    tick();
    var ms = Date.now() + (ticket ? ticket.offset * 1000 : 0);
    timer = setTimeout(startTimer, 1000 - (((ms % 1000) + 1000) % 1000) + 15);
  }

  async function onBind() {
    if (busy) return;
    busy = true;
    if (el.bind) el.bind.disabled = true;
    ticket = null;
    clearQr();
    try {
      if (await bindNew()) {
        busy = false;
        await fetchTicket(false);
      }
    } catch (e) {
      setStatus(e && e.name === 'NotSupportedError' ? TEXT.unsupported : TEXT.bindFailed + (e && e.name || ''), 'error');
    } finally {
      busy = false;
      if (el.bind) el.bind.disabled = false;
      tick();
    }
  }

  async function supported() {
    if (!window.isSecureContext) return TEXT.insecure;
    if (!window.crypto || !crypto.subtle || !window.TextEncoder) return TEXT.unsupported;
    try {
      // A throwaway key: the only reliable test (older browsers throw NotSupportedError).
      await crypto.subtle.generateKey(ED25519, false, ['sign', 'verify']);
      return null;
    } catch (e) {
      return TEXT.unsupported;
    }
  }

  async function start() {
    var why = await supported();
    if (why) {
      setStatus(why, 'error');
      if (el.bind) el.bind.disabled = true;
      return;
    }
    if (typeof qrcode !== 'function') {
      setStatus(TEXT.qrFailed, 'error');
      return;
    }
    if (el.bind) el.bind.addEventListener('click', onBind);
    setStatus(TEXT.loading);
    busy = true;
    try {
      var rec;
      try {
        rec = await loadRecord();
      } catch (e) {
        setStatus(TEXT.storage, 'error');
        return;
      }
      device = await deviceFromRecord(rec);
      var hasDevice = root.getAttribute('data-has-device') !== 'false';
      if (!device) {
        await bindNew();
      } else if (!hasDevice || !device.registered) {
        await register(device);
      }
    } catch (e) {
      setStatus(e && e.name === 'NotSupportedError' ? TEXT.unsupported : TEXT.storage, 'error');
      return;
    } finally {
      busy = false;
    }
    if (!device) return;
    await fetchTicket(true);
    startTimer();
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'visible') startTimer();
    });
    window.addEventListener('resize', function () {
      if (ticket && shownStep !== null) { shownStep = null; tick(); }
    });
  }

  start();
})();
