// The gate page (新通码 scanner), GET /gate/scan, on a tablet at the gate.
//
// Reads the camera, decodes QR codes with the vendored jsQR (global `jsQR`), and
// sends each new `LX1:` text once to POST /api/v1/gate/scan with the chosen
// direction. The server checks the pass and answers 200 with outcome "pass" or
// "deny" (and a reason code); the page shows it in very large type for a few
// seconds. The QR text is never logged.
(function () {
  'use strict';

  var root = document.getElementById('gate');
  if (!root) return;

  var el = {
    video: document.getElementById('gate-video'),
    canvas: document.getElementById('gate-canvas'),
    result: document.getElementById('gate-result'),
    status: document.getElementById('gate-status'),
    entry: document.getElementById('gate-dir-entry'),
    exit: document.getElementById('gate-dir-exit'),
  };

  var LANG = (root.getAttribute('data-lang') || document.documentElement.lang || 'zh')
    .toLowerCase().indexOf('en') === 0 ? 'en' : 'zh';
  var CSRF = root.getAttribute('data-csrf') || '';

  var TEXT = {
    zh: {
      idle: '请出示通行码',
      pass: '通行',
      deny: '禁止通行',
      entry: '进入',
      exit: '离开',
      checking: '正在核验…',
      noCamera: '无法使用摄像头：此浏览器不支持，或页面未通过 HTTPS 打开。',
      denied: '摄像头权限被拒绝：请在浏览器设置中允许本页使用摄像头，然后刷新。',
      notFound: '未找到摄像头。',
      busyCam: '摄像头被其他应用占用。',
      camFailed: '无法打开摄像头：',
      noDecoder: '二维码识别组件未加载，请刷新页面。',
      scanning: '摄像头已开启，正在扫描。',
      network: '网络异常，未能核验，请让骑手再次出示。',
      loggedOut: '登录已过期，请重新登录。',
      refused: '服务器拒绝了请求：',
      notPass: '这不是新通码。',
    },
    en: {
      idle: 'Show your pass',
      pass: 'PASS',
      deny: 'DENIED',
      entry: 'Entry',
      exit: 'Exit',
      checking: 'Checking…',
      noCamera: 'Cannot use the camera: this browser lacks it, or the page is not served over HTTPS.',
      denied: 'Camera permission denied: allow the camera for this page in the browser settings, then reload.',
      notFound: 'No camera found.',
      busyCam: 'The camera is in use by another app.',
      camFailed: 'Cannot open the camera: ',
      noDecoder: 'The QR decoder did not load; please reload the page.',
      scanning: 'Camera on, scanning.',
      network: 'Network problem: not checked. Ask the rider to show the code again.',
      loggedOut: 'Your session has expired; please log in again.',
      refused: 'The server refused the request: ',
      notPass: 'This is not a Lianxin gate pass.',
    },
  }[LANG];

  // Deny reason labels in the page language, from the server's own table (the same
  // words as the entries-and-exits page): {code: label}. An unknown code shows the
  // server's message.
  var REASONS = {};
  try {
    REASONS = JSON.parse((document.getElementById('gate-reasons') || {}).textContent || '{}');
  } catch (e) {
    REASONS = {};
  }

  var SHOW_MS = 6000; // how long a result stays up
  var FRAME_MS = 125; // ~8 frames a second
  var MAX_WIDTH = 640; // frames are scaled down to this for decoding

  var direction = root.getAttribute('data-direction') === 'exit' ? 'exit' : 'entry';
  var lastText = null; // the last text submitted: each shown code is sent once
  var lastOutcome = null; // what the server said about it
  var posting = false;
  var clearTimer = null;
  var ctx = null;

  function setStatus(text, kind) {
    if (!el.status) return;
    el.status.textContent = text || '';
    if (kind) el.status.setAttribute('data-kind', kind);
    else el.status.removeAttribute('data-kind');
  }

  function line(cls, text) {
    var p = document.createElement('span');
    p.className = cls;
    p.textContent = text;
    return p;
  }

  function dirLabel(d) {
    return d === 'exit' ? TEXT.exit : TEXT.entry;
  }

  function showIdle() {
    if (clearTimer) { clearTimeout(clearTimer); clearTimer = null; }
    var r = el.result;
    if (!r) return;
    r.removeAttribute('data-outcome');
    r.removeAttribute('data-reason');
    r.className = 'gate-result gate-idle';
    r.replaceChildren(line('gate-result-word', TEXT.idle), line('gate-result-dir', dirLabel(direction)));
  }

  function showChecking() {
    var r = el.result;
    if (!r) return;
    if (clearTimer) { clearTimeout(clearTimer); clearTimer = null; }
    r.removeAttribute('data-outcome');
    r.removeAttribute('data-reason');
    r.className = 'gate-result gate-checking';
    r.replaceChildren(line('gate-result-word', TEXT.checking));
  }

  function showOutcome(answer) {
    var r = el.result;
    if (!r) return;
    if (clearTimer) clearTimeout(clearTimer);
    var d = answer.direction === 'exit' ? 'exit' : 'entry';
    if (answer.outcome === 'pass') {
      r.className = 'gate-result gate-pass';
      r.removeAttribute('data-reason');
      r.replaceChildren(line('gate-result-word', TEXT.pass), line('gate-result-dir', dirLabel(d)));
      r.setAttribute('data-outcome', 'pass');
    } else {
      var code = String(answer.reason || '');
      var label = REASONS[code] || answer.message || code;
      r.className = 'gate-result gate-deny';
      r.setAttribute('data-reason', code);
      r.replaceChildren(
        line('gate-result-word', TEXT.deny),
        line('gate-result-reason', label),
        line('gate-result-dir', dirLabel(d)),
      );
      r.setAttribute('data-outcome', 'deny');
    }
    clearTimer = setTimeout(showIdle, SHOW_MS);
  }

  function setDirection(d) {
    direction = d === 'exit' ? 'exit' : 'entry';
    root.setAttribute('data-direction', direction);
    if (el.entry) el.entry.setAttribute('aria-pressed', String(direction === 'entry'));
    if (el.exit) el.exit.setAttribute('aria-pressed', String(direction === 'exit'));
    // The code in view is not sent again the other way: a scan that got past the
    // time check spent it, pass or deny, so it would only come back as a replay.
    // The phone's next code (within 30 seconds) is checked the new way.
    if (!el.result || !el.result.hasAttribute('data-outcome')) showIdle();
  }

  async function submit(text) {
    posting = true;
    showChecking();
    try {
      var resp;
      try {
        resp = await fetch('/api/v1/gate/scan', {
          method: 'POST',
          credentials: 'same-origin',
          cache: 'no-store',
          headers: {
            'accept': 'application/json',
            'content-type': 'application/json',
            'x-csrf-token': CSRF,
          },
          body: JSON.stringify({ qr: text, direction: direction }),
        });
      } catch (e) {
        lastText = null; // not checked: the same code may be tried again
        showIdle();
        setStatus(TEXT.network, 'error');
        return;
      }
      var json = null;
      try { json = await resp.json(); } catch (e) { json = null; }
      if (resp.ok && json && (json.outcome === 'pass' || json.outcome === 'deny')) {
        lastOutcome = json.outcome;
        setStatus(TEXT.scanning);
        showOutcome(json);
        return;
      }
      showIdle();
      if (resp.status === 401) {
        setStatus(TEXT.loggedOut, 'error');
      } else {
        var err = (json && json.error) || {};
        if (resp.status >= 500 || resp.status === 429) lastText = null; // may be retried
        setStatus(TEXT.refused + (err.message || ('HTTP ' + resp.status)), 'error');
      }
    } finally {
      posting = false;
    }
  }

  function scanFrame() {
    var v = el.video;
    if (!v || v.readyState < 2 || !v.videoWidth || posting) return;
    var w = v.videoWidth;
    var h = v.videoHeight;
    if (w > MAX_WIDTH) {
      h = Math.round(h * MAX_WIDTH / w);
      w = MAX_WIDTH;
    }
    var c = el.canvas;
    if (c.width !== w) c.width = w;
    if (c.height !== h) c.height = h;
    ctx.drawImage(v, 0, 0, w, h);
    var img = ctx.getImageData(0, 0, w, h);
    var code = jsQR(img.data, w, h, { inversionAttempts: 'dontInvert' });
    if (!code || !code.data) return;
    var text = code.data;
    if (text.indexOf('LX1:') !== 0) {
      if (!posting) setStatus(TEXT.notPass);
      return;
    }
    if (text === lastText) return;
    lastText = text;
    lastOutcome = null;
    submit(text);
  }

  function loop() {
    try {
      scanFrame();
    } catch (e) {
      // A bad frame: try the next one.
    }
    setTimeout(loop, FRAME_MS);
  }

  function cameraError(e) {
    var name = e && e.name;
    if (name === 'NotAllowedError' || name === 'SecurityError') return TEXT.denied;
    if (name === 'NotFoundError' || name === 'OverconstrainedError') return TEXT.notFound;
    if (name === 'NotReadableError') return TEXT.busyCam;
    return TEXT.camFailed + (name || String(e));
  }

  async function start() {
    if (el.entry) el.entry.addEventListener('click', function () { setDirection('entry'); });
    if (el.exit) el.exit.addEventListener('click', function () { setDirection('exit'); });
    setDirection(direction);
    showIdle();
    if (typeof jsQR !== 'function') {
      setStatus(TEXT.noDecoder, 'error');
      return;
    }
    if (!el.canvas || !el.video) return;
    ctx = el.canvas.getContext('2d', { willReadFrequently: true });
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      setStatus(TEXT.noCamera, 'error');
      return;
    }
    var stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
    } catch (e) {
      setStatus(cameraError(e), 'error');
      return;
    }
    el.video.muted = true;
    el.video.setAttribute('playsinline', '');
    el.video.srcObject = stream;
    try {
      await el.video.play();
    } catch (e) {
      // Autoplay of a muted stream is allowed; if not, frames still arrive once shown.
    }
    setStatus(TEXT.scanning);
    loop();
  }

  start();
})();
