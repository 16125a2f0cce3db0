// A mall's directory, GET /malls/{id} (templates/mall.html): "where is shop X".
//
// Without JavaScript the search box is a plain GET form (?q=) and the server lists
// the hits. With it, typing searches as you go: GET /api/v1/map/malls/{id}/search?q=
// (debounced), the hits replace #mall-hits (floor and zone in large type: "3F · B区"),
// the matching rows of the floor list are highlighted (li.merchant.is-hit), and the
// address keeps ?q= so a reload or a shared link shows the same. A tap on a hit
// scrolls to its row.
// #mall-hits carries data-state (idle | loading | done | error) and data-q (the query
// of the hits shown).
(function () {
  'use strict';

  var root = document.getElementById('mall-page');
  var input = document.getElementById('mall-search');
  var form = document.getElementById('mall-search-form');
  var list = document.getElementById('mall-hits');
  var status = document.getElementById('mall-hits-status');
  if (!root || !input || !form || !list) return;

  var T = root.dataset;
  var MALL = root.getAttribute('data-mall-id');
  var DELAY_MS = 200;

  function fill(template, values) {
    return String(template || '').replace(/\{(\w+)\}/g, function (all, k) {
      return Object.prototype.hasOwnProperty.call(values, k) ? values[k] : all;
    });
  }
  function matchLabel(code) {
    var key = 'match' + String(code || '').replace(/(^|_)([a-z])/g, function (a, b, c) { return c.toUpperCase(); });
    return T[key] || code || '';
  }
  function setStatus(text, kind) {
    if (!status) return;
    status.textContent = text || '';
    if (kind) status.setAttribute('data-kind', kind); else status.removeAttribute('data-kind');
  }
  function span(cls, text) {
    var s = document.createElement('span');
    s.className = cls;
    s.textContent = text == null ? '' : String(text);
    return s;
  }

  /** The floor list's rows, to highlight and to scroll to. */
  function rowsFor(hit) {
    var out = [];
    Array.prototype.forEach.call(document.querySelectorAll('section.floor'), function (floor) {
      if (hit.floor != null && floor.getAttribute('data-floor') !== String(hit.floor)) return;
      Array.prototype.forEach.call(floor.querySelectorAll('.zone'), function (zone) {
        if (hit.zone != null && hit.zone !== '' && zone.getAttribute('data-zone') !== String(hit.zone)) return;
        Array.prototype.forEach.call(zone.querySelectorAll('li.merchant'), function (li) {
          if (li.getAttribute('data-shop') === hit.shop) out.push(li);
        });
      });
    });
    return out;
  }
  function highlight(hits) {
    Array.prototype.forEach.call(document.querySelectorAll('li.merchant.is-hit'), function (li) {
      li.classList.remove('is-hit');
    });
    hits.forEach(function (hit) {
      rowsFor(hit).forEach(function (li) { li.classList.add('is-hit'); });
    });
  }
  function hitFromItem(li) {
    return { shop: li.getAttribute('data-shop'), floor: li.getAttribute('data-floor'), zone: li.getAttribute('data-zone') };
  }
  function goTo(hit) {
    var row = rowsFor(hit)[0];
    if (row && row.scrollIntoView) row.scrollIntoView({ behavior: 'smooth', block: 'center' });
  }

  function render(q, hits) {
    list.textContent = '';
    hits.forEach(function (hit) {
      var li = document.createElement('li');
      li.className = 'hit';
      li.setAttribute('data-shop', hit.shop);
      li.setAttribute('data-floor', hit.floor == null ? '' : hit.floor);
      li.setAttribute('data-zone', hit.zone == null ? '' : hit.zone);
      li.setAttribute('data-match', hit.match || '');
      li.setAttribute('tabindex', '0');
      var where = span('hit-where', '');
      where.appendChild(span('hit-floor', hit.floor));
      if (hit.zone) {
        where.appendChild(document.createTextNode(' · '));
        where.appendChild(span('hit-zone', hit.zone));
      }
      li.appendChild(where);
      li.appendChild(span('hit-shop', hit.shop));
      li.appendChild(span('hit-meta', (hit.category ? hit.category + ' · ' : '') + matchLabel(hit.match)));
      list.appendChild(li);
    });
    list.setAttribute('data-q', q);
    list.setAttribute('data-state', 'done');
    setStatus(hits.length ? fill(T.textHitsN, { n: String(hits.length) }) : fill(T.textNoHits, { q: q }));
    highlight(hits);
  }

  function clear() {
    list.textContent = '';
    list.setAttribute('data-q', '');
    list.setAttribute('data-state', 'idle');
    setStatus('');
    highlight([]);
  }

  function keepInAddress(q) {
    if (!window.history || !history.replaceState) return;
    var u = new URL(window.location.href);
    if (q) u.searchParams.set('q', q); else u.searchParams.delete('q');
    history.replaceState(null, '', u.pathname + u.search + u.hash);
  }

  var seq = 0;
  var timer = null;
  function search(q) {
    q = q.trim();
    keepInAddress(q);
    var mine = ++seq;
    if (!q) { clear(); return Promise.resolve(); }
    list.setAttribute('data-state', 'loading');
    setStatus(T.textSearching);
    var path = '/api/v1/map/malls/' + encodeURIComponent(MALL) + '/search?q=' + encodeURIComponent(q);
    return fetch(path, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) {
        return r.json().catch(function () { return null; }).then(function (body) {
          if (!r.ok) throw new Error(body && body.error && body.error.message ? body.error.message : 'HTTP ' + r.status);
          return body;
        });
      })
      .then(function (body) {
        if (mine !== seq) return;
        render(q, (body && body.hits) || []);
      }, function (err) {
        if (mine !== seq) return;
        list.setAttribute('data-state', 'error');
        setStatus(T.textSearchFailed + err.message, 'error');
      });
  }

  input.addEventListener('input', function () {
    clearTimeout(timer);
    timer = setTimeout(function () { search(input.value); }, DELAY_MS);
  });
  form.addEventListener('submit', function (ev) {
    ev.preventDefault();
    clearTimeout(timer);
    search(input.value);
  });
  list.addEventListener('click', function (ev) {
    var li = ev.target.closest ? ev.target.closest('li.hit') : null;
    if (li) goTo(hitFromItem(li));
  });
  list.addEventListener('keydown', function (ev) {
    if (ev.key !== 'Enter') return;
    var li = ev.target.closest ? ev.target.closest('li.hit') : null;
    if (li) goTo(hitFromItem(li));
  });

  // The server's hits (?q=…) are already on the page: mark their exact rows.
  var served = Array.prototype.map.call(list.querySelectorAll('li.hit'), hitFromItem);
  if (served.length) highlight(served);
  list.setAttribute('data-state', input.value.trim() ? 'done' : 'idle');
  list.setAttribute('data-q', input.value.trim());

  window.lianxinMall = { search: search };
})();
