// The rider-friendly map, GET /map (templates/map.html), on a phone or a desk.
//
// Draws, with the vendored Leaflet (global `L`) and no tile server unless the page
// names one (data-tile-url), the district outlines, the stations (circle markers:
// green when open now, grey when closed; the ring is red for a 暖新驿站 and orange
// for a 红色蓄能站), the rider-friendly compounds with their rider gates, the malls
// and the delivery hot spots, from GET /api/v1/map/layers. No image is needed: no
// default marker icon, no layers control.
//
// The starting point is the district centre on load (or ?lat=&lon= in the page's
// address), a tap on the map, or "my location". For it the page asks
// GET /api/v1/map/nearest (with the amenity and open-now filters) and lists the
// stations as cards in #station-list, and GET /api/v1/map/within for the travel-time
// circle and the counts in #within-summary.
//
// For tests and other scripts: window.lianxinMap = {
//   map,                         the Leaflet map
//   setOrigin(lat, lon) → Promise resolved when the list and the circle are drawn,
//   refresh() → Promise          the same for the current origin (after a filter change),
//   origin()                     {lat, lon} or null,
//   ready                        Promise resolved once the layers are drawn
// }.
// #station-list carries data-state (idle | loading | done | error) and data-origin
// ("lat,lon" of the last finished query).
(function () {
  'use strict';

  var root = document.getElementById('map-page');
  if (!root || typeof L === 'undefined') return;

  var T = document.getElementById('map-text').dataset;
  var LANG = root.getAttribute('data-lang') === 'en' ? 'en' : 'zh';
  var LOCALE = LANG === 'en' ? 'en-GB' : 'zh-CN';
  var TZ = 'Asia/Shanghai';

  var el = {
    map: document.getElementById('map'),
    form: document.getElementById('map-filters'),
    openNow: document.getElementById('open-now'),
    minutes: document.getElementById('map-minutes'),
    mode: document.getElementById('map-mode'),
    district: document.getElementById('map-district'),
    locate: document.getElementById('my-location'),
    status: document.getElementById('map-status'),
    list: document.getElementById('station-list'),
    summary: document.getElementById('within-summary'),
    layers: document.getElementById('map-layers'),
  };

  // Amenity labels in the page's language, from the filter checkboxes.
  var AMENITY = {};
  Array.prototype.forEach.call(el.form.querySelectorAll('input[name=amenity]'), function (box) {
    AMENITY[box.value] = (box.parentNode.textContent || box.value).trim();
  });

  function fill(template, values) {
    return String(template).replace(/\{(\w+)\}/g, function (all, k) {
      return Object.prototype.hasOwnProperty.call(values, k) ? values[k] : all;
    });
  }
  function h(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] === null || attrs[k] === undefined || attrs[k] === false) return;
        if (k === 'class') e.className = attrs[k];
        else if (k === 'text') e.textContent = attrs[k];
        else e.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
    });
    return e;
  }
  function setStatus(text, kind) {
    el.status.textContent = text || '';
    if (kind) el.status.setAttribute('data-kind', kind);
    else el.status.removeAttribute('data-kind');
  }

  // ----- formatting -----
  var NUM = new Intl.NumberFormat(LOCALE);
  function distance(m) {
    if (!isFinite(m)) return '';
    if (m < 1000) return fill(T.m, { n: NUM.format(Math.max(10, Math.round(m / 10) * 10)) });
    return fill(T.km, { n: (Math.round(m / 100) / 10).toFixed(1) });
  }
  var DAY = new Intl.DateTimeFormat('en-CA', { timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit' });
  var TIME = new Intl.DateTimeFormat(LOCALE, { timeZone: TZ, hour: '2-digit', minute: '2-digit', hour12: false });
  var WEEKDAY_TIME = new Intl.DateTimeFormat(LOCALE, { timeZone: TZ, weekday: 'short', hour: '2-digit', minute: '2-digit', hour12: false });
  var DATE_TIME = new Intl.DateTimeFormat(LOCALE, { timeZone: TZ, month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hour12: false });
  /** A next-change instant in Asia/Shanghai: "22:00" today, "周二 08:00" this week, else a date. */
  function when(rfc3339) {
    var d = new Date(rfc3339);
    if (isNaN(d.getTime())) return '';
    var now = new Date();
    if (DAY.format(d) === DAY.format(now)) return TIME.format(d);
    if (d.getTime() - now.getTime() < 6 * 86400000) return WEEKDAY_TIME.format(d);
    return DATE_TIME.format(d);
  }
  var ZH_DAYS = { Mo: '周一', Tu: '周二', We: '周三', Th: '周四', Fr: '周五', Sa: '周六', Su: '周日', PH: '节假日' };
  /** OSM-style hours ("Mo-Fr 08:00-20:00; Sa,Su 09:00-18:00") with Chinese day names. */
  function hoursText(hours) {
    if (!hours) return '';
    if (LANG === 'en') return hours;
    return String(hours).replace(/\b(Mo|Tu|We|Th|Fr|Sa|Su|PH)\b/g, function (d) { return ZH_DAYS[d]; })
      .replace(/-(?=周)/g, '至').replace(/;\s*/g, '；').replace(/,(?=周)/g, '、');
  }
  function statusText(s) {
    var parts = [s.open_now ? T.open : T.closed];
    if (s.next_change) {
      var t = when(s.next_change);
      if (t) parts.push(fill(s.open_now ? T.closesAt : T.opensAt, { t: t }));
    }
    return parts.join(' · ');
  }
  function kindText(kind) {
    if (kind === 'warm_station') return T.kindWarmStation;
    if (kind === 'energy_station') return T.kindEnergyStation;
    return kind || '';
  }

  // ----- the map -----
  var tileUrl = root.getAttribute('data-tile-url') || '';
  var centre = [Number(root.getAttribute('data-lat')), Number(root.getAttribute('data-lon'))];
  var map = L.map(el.map, {
    center: centre,
    zoom: Number(root.getAttribute('data-zoom')) || 14,
    attributionControl: !!tileUrl,
    zoomControl: true,
    tap: true,
  });
  if (tileUrl) {
    L.tileLayer(tileUrl, {
      maxZoom: 19,
      attribution: root.getAttribute('data-tile-attribution') || '',
    }).addTo(map);
    if (map.attributionControl) map.attributionControl.setPrefix(false);
  }

  var groups = {
    outlines: L.featureGroup(),
    hotspots: L.featureGroup(),
    compounds: L.featureGroup(),
    malls: L.featureGroup(),
    stations: L.featureGroup(),
  };
  Object.keys(groups).forEach(function (k) { groups[k].addTo(map); });
  var resultLayer = L.featureGroup().addTo(map); // the origin and the circle
  var stationMarkers = {}; // code → circle marker
  var stationsByCode = {};

  function stationStyle(s) {
    return {
      radius: 8,
      weight: 3,
      color: s.kind === 'energy_station' ? '#e65100' : '#b71c1c',
      fillColor: s.open_now ? '#43a047' : '#bdbdbd',
      fillOpacity: 0.95,
      bubblingMouseEvents: false,
      className: 'station-marker ' + (s.open_now ? 'station-open' : 'station-closed'),
    };
  }

  function stationPopup(s) {
    var box = h('div', { class: 'map-popup' }, [
      h('h3', { text: s.name }),
      h('p', { class: 'sc-status ' + (s.open_now ? 'open' : 'closed'), text: statusText(s) }),
      h('p', { class: 'small', text: kindText(s.kind) + (s.org ? ' · ' + s.org : '') }),
      s.hours ? h('p', { class: 'small', text: T.hours + '：' + hoursText(s.hours) }) : null,
      (s.amenities || []).length
        ? h('p', { class: 'small', text: s.amenities.map(function (a) { return AMENITY[a] || a; }).join('、') })
        : null,
      s.address ? h('p', { class: 'small muted', text: s.address }) : null,
    ]);
    return box;
  }

  // Names are permanent labels from zoom 16; below, a station's name shows on hover
  // and the listed results carry their number (as on their cards).
  function labelPermanent() { return map.getZoom() >= 16; }
  function bindLabel(marker) {
    var named = labelPermanent();
    var rank = marker._lxRank;
    var text = rank ? (named ? rank + ' ' + marker._lxLabel : String(rank)) : marker._lxLabel;
    marker.unbindTooltip();
    marker.bindTooltip(text, {
      permanent: named || !!rank,
      direction: 'top',
      offset: [0, -8],
      className: 'map-label ' + (marker._lxClass || '') + (rank && !named ? ' rank-label' : ''),
    });
  }
  map.on('zoomend', function () {
    Object.keys(stationMarkers).forEach(function (code) { bindLabel(stationMarkers[code]); });
  });

  function drawLayers(data) {
    if (data.outlines && data.outlines.features) {
      L.geoJSON(data.outlines, {
        style: function () { return { color: '#b71c1c', weight: 1.5, opacity: 0.8, fillColor: '#b71c1c', fillOpacity: 0.03 }; },
        onEachFeature: function (f, layer) {
          var name = f.properties && (f.properties.name || f.properties.code);
          if (name) {
            layer.bindTooltip(name, { permanent: true, direction: 'center', className: 'district-label', interactive: false });
          }
        },
      }).addTo(groups.outlines);
    }
    (data.hotspots || []).forEach(function (p) {
      var w = Number(p.weight) || 1;
      L.circleMarker([p.lat, p.lon], {
        radius: Math.max(3, Math.min(10, 2 + Math.sqrt(w))),
        weight: 0,
        fillColor: '#fb8c00',
        fillOpacity: 0.35,
        bubblingMouseEvents: true,
        className: 'hotspot-marker',
      }).bindTooltip(p.name + (p.weight ? ' · ' + p.weight : ''), { className: 'map-label' }).addTo(groups.hotspots);
    });
    (data.compounds || []).forEach(function (c) {
      L.circleMarker([c.lat, c.lon], {
        radius: 6, weight: 2, color: '#fff', fillColor: '#1e88e5', fillOpacity: 0.9,
        bubblingMouseEvents: false, className: 'compound-marker',
      }).bindTooltip(c.name, { className: 'map-label' })
        .bindPopup(h('div', { class: 'map-popup' }, [
          h('h3', { text: c.name }),
          h('p', { class: 'small', text: T.compound }),
          (c.gates || []).length
            ? h('p', { class: 'small', text: T.gate + '：' + c.gates.map(function (g) { return g.name; }).join('、') })
            : null,
        ]))
        .addTo(groups.compounds);
      (c.gates || []).forEach(function (g) {
        L.circleMarker([g.lat, g.lon], {
          radius: 3, weight: 1, color: '#0d47a1', fillColor: '#fff', fillOpacity: 1,
          bubblingMouseEvents: false, className: 'gate-marker',
        }).bindTooltip(c.name + ' · ' + T.gate + ' ' + g.name, { className: 'map-label' }).addTo(groups.compounds);
      });
    });
    (data.malls || []).forEach(function (m) {
      var label = LANG === 'en' ? 'M' : '商';
      L.marker([m.lat, m.lon], {
        icon: L.divIcon({ className: 'mall-icon', html: '<span>' + label + '</span>', iconSize: [22, 22], iconAnchor: [11, 11] }),
        keyboard: true,
        title: m.name,
        bubblingMouseEvents: false,
      }).bindTooltip(m.name, { className: 'map-label', direction: 'top', offset: [0, -10] })
        .bindPopup(h('div', { class: 'map-popup' }, [
          h('h3', { text: m.name }),
          h('p', null, [h('a', { href: '/malls/' + encodeURIComponent(m.id), text: T.mallDirectory })]),
        ]))
        .addTo(groups.malls);
    });
    (data.stations || []).forEach(function (s) {
      stationsByCode[s.code] = s;
      var m = L.circleMarker([s.lat, s.lon], stationStyle(s));
      m._lxLabel = s.name;
      m._lxClass = s.open_now ? 'open' : '';
      bindLabel(m);
      m.bindPopup(stationPopup(s));
      m.on('click', function () { selectCard(s.code, false); });
      m.addTo(groups.stations);
      if (m._path) m._path.setAttribute('data-code', s.code);
      stationMarkers[s.code] = m;
    });
    el.map.setAttribute('data-stations', String((data.stations || []).length));
    el.map.setAttribute('data-ready', 'true');
  }

  // Layer checkboxes (no Leaflet layers control: it needs images).
  if (el.layers) {
    el.layers.addEventListener('change', function (ev) {
      var box = ev.target;
      var g = groups[box.value];
      if (!g) return;
      if (box.checked) map.addLayer(g); else map.removeLayer(g);
    });
  }

  // ----- queries -----
  function api(path, params) {
    var q = Object.keys(params).map(function (k) {
      return encodeURIComponent(k) + '=' + encodeURIComponent(params[k]);
    }).join('&');
    return fetch(path + '?' + q, { headers: { Accept: 'application/json' }, credentials: 'same-origin' })
      .then(function (r) {
        return r.json().catch(function () { return null; }).then(function (body) {
          if (!r.ok) {
            var msg = body && body.error && body.error.message ? body.error.message : 'HTTP ' + r.status;
            throw new Error(msg);
          }
          return body;
        });
      });
  }

  function filters() {
    var amenities = Array.prototype.filter.call(el.form.querySelectorAll('input[name=amenity]'), function (b) {
      return b.checked;
    }).map(function (b) { return b.value; });
    return {
      amenities: amenities,
      openNow: !!(el.openNow && el.openNow.checked),
      minutes: el.minutes ? el.minutes.value : '15',
      mode: el.mode ? el.mode.value : 'walk',
    };
  }

  var origin = null;
  var originMarker = null;
  var circle = null;
  var seq = 0;

  function round6(x) { return Math.round(x * 1e6) / 1e6; }

  function drawOrigin() {
    if (originMarker) resultLayer.removeLayer(originMarker);
    originMarker = L.circleMarker([origin.lat, origin.lon], {
      radius: 9, weight: 3, color: '#fff', fillColor: '#1565c0', fillOpacity: 1,
      interactive: false, className: 'origin-marker',
    }).bindTooltip(T.origin, { permanent: true, direction: 'bottom', offset: [0, 9], className: 'map-label origin-label' });
    resultLayer.addLayer(originMarker);
  }

  function refresh() {
    if (!origin) return Promise.resolve();
    var mine = ++seq;
    var f = filters();
    var at = round6(origin.lat) + ',' + round6(origin.lon);
    el.list.setAttribute('data-state', 'loading');
    setStatus(T.loading);
    var nearestParams = { lat: round6(origin.lat), lon: round6(origin.lon), datum: 'wgs84', k: 5 };
    if (f.amenities.length) nearestParams.amenities = f.amenities.join(',');
    if (f.openNow) nearestParams.open_now = 'true';
    var withinParams = { lat: round6(origin.lat), lon: round6(origin.lon), datum: 'wgs84', minutes: f.minutes, mode: f.mode };
    return Promise.all([
      api('/api/v1/map/nearest', nearestParams),
      api('/api/v1/map/within', withinParams),
    ]).then(function (res) {
      if (mine !== seq) return;
      renderList(res[0].stations || [], f);
      renderWithin(res[1]);
      el.list.setAttribute('data-origin', at);
      el.list.setAttribute('data-state', 'done');
      setStatus(T.clickHint);
    }, function (err) {
      if (mine !== seq) return;
      el.list.setAttribute('data-state', 'error');
      setStatus(T.error + err.message, 'error');
    });
  }

  function setOrigin(lat, lon) {
    lat = Number(lat);
    lon = Number(lon);
    if (!isFinite(lat) || !isFinite(lon)) return Promise.reject(new Error('bad point'));
    origin = { lat: lat, lon: lon };
    drawOrigin();
    return refresh();
  }

  function renderList(stations, f) {
    // Unpin the previous results' labels.
    Object.keys(stationMarkers).forEach(function (code) {
      var m = stationMarkers[code];
      if (m._lxRank) { m._lxRank = 0; bindLabel(m); }
    });
    el.list.textContent = '';
    if (!stations.length) {
      el.list.appendChild(h('li', { class: 'muted', id: 'station-none', text: T.none }));
      return;
    }
    stations.forEach(function (s, i) {
      var wanted = {};
      f.amenities.forEach(function (a) { wanted[a] = true; });
      var card = h('li', {
        class: 'station-card',
        'data-code': s.code,
        'data-open': s.open_now ? 'true' : 'false',
        'data-distance': String(s.distance_m),
        'data-amenities': (s.amenities || []).join(','),
        tabindex: '0',
      }, [
        h('div', { class: 'sc-head' }, [
          h('span', { class: 'sc-rank', text: String(i + 1) }),
          h('span', { class: 'sc-name', text: s.name }),
          h('span', { class: 'sc-distance', text: distance(s.distance_m) }),
        ]),
        h('div', { class: 'sc-status ' + (s.open_now ? 'open' : 'closed'), text: statusText(s) }),
        h('div', { class: 'badges sc-amenities' }, (s.amenities || []).map(function (a) {
          return h('span', { class: 'badge' + (wanted[a] ? ' amenity-wanted' : ''), 'data-amenity': a, text: AMENITY[a] || a });
        })),
        s.hours ? h('div', { class: 'small sc-hours', title: s.hours, text: T.hours + '：' + hoursText(s.hours) }) : null,
        h('div', { class: 'small muted sc-kind', text: kindText(s.kind) + (s.org ? ' · ' + T.org + '：' + s.org : '') }),
        s.address ? h('div', { class: 'small muted sc-address', text: s.address }) : null,
      ]);
      card.addEventListener('click', function () { selectCard(s.code, true); });
      card.addEventListener('keydown', function (ev) {
        if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); selectCard(s.code, true); }
      });
      el.list.appendChild(card);
      // Pin the result's label on the map, numbered like its card.
      var m = stationMarkers[s.code];
      if (m) {
        m._lxRank = i + 1;
        bindLabel(m);
        if (map.hasLayer(m)) m.bringToFront();
      }
    });
  }

  function selectCard(code, fromList) {
    Array.prototype.forEach.call(el.list.querySelectorAll('.station-card'), function (c) {
      c.classList.toggle('is-selected', c.getAttribute('data-code') === code);
    });
    var m = stationMarkers[code];
    if (fromList && m) {
      map.panTo(m.getLatLng());
      m.openPopup();
      if (window.matchMedia && window.matchMedia('(max-width: 959px)').matches) {
        el.map.scrollIntoView({ behavior: 'smooth', block: 'center' });
      }
    } else if (!fromList) {
      var card = el.list.querySelector('.station-card[data-code="' + (window.CSS && CSS.escape ? CSS.escape(code) : code) + '"]');
      if (card && card.scrollIntoView) card.scrollIntoView({ behavior: 'smooth', block: 'nearest' });
    }
  }

  function renderWithin(w) {
    if (circle) resultLayer.removeLayer(circle);
    circle = null;
    if (!w || !isFinite(Number(w.radius_m))) { el.summary.hidden = true; return; }
    circle = L.circle([origin.lat, origin.lon], {
      radius: Number(w.radius_m),
      color: '#b71c1c', weight: 2, dashArray: '6 4', fillColor: '#b71c1c', fillOpacity: 0.05,
      interactive: false, className: 'within-circle',
    });
    resultLayer.addLayer(circle);
    circle.bringToBack();
    var modeText = w.mode === 'ebike' ? T.modeEbike : T.modeWalk;
    var method = w.method === 'road' ? T.methodRoad : T.methodStraightLine;
    var count = function (what, label) {
      var n = (w[what] || []).length;
      return h('div', { class: 'stat', 'data-what': what }, [
        h('span', { class: 'stat-value', text: String(n) }),
        h('span', { class: 'stat-label', text: label }),
      ]);
    };
    el.summary.textContent = '';
    el.summary.setAttribute('data-radius', String(Math.round(Number(w.radius_m))));
    el.summary.setAttribute('data-method', w.method || '');
    el.summary.appendChild(h('h2', { text: fill(T.withinTitle, { n: String(w.minutes), m: modeText }) }));
    el.summary.appendChild(h('p', { class: 'small muted', text: fill(T.radius, { r: distance(Number(w.radius_m)), m: method }) }));
    el.summary.appendChild(h('div', { class: 'stats' }, [
      count('stations', T.withinStations),
      count('compounds', T.withinCompounds),
      count('malls', T.withinMalls),
      count('hotspots', T.withinHotspots),
    ]));
    el.summary.hidden = false;
  }

  // ----- events -----
  map.on('click', function (ev) { setOrigin(ev.latlng.lat, ev.latlng.lng); });
  el.form.addEventListener('submit', function (ev) { ev.preventDefault(); refresh(); });
  el.form.addEventListener('change', function (ev) {
    if (ev.target === el.district) {
      var opt = el.district.options[el.district.selectedIndex];
      var lat = Number(opt.getAttribute('data-lat'));
      var lon = Number(opt.getAttribute('data-lon'));
      if (isFinite(lat) && isFinite(lon)) {
        map.setView([lat, lon], Number(root.getAttribute('data-zoom')) || 14);
        setOrigin(lat, lon);
      }
      return;
    }
    refresh();
  });
  if (el.locate && navigator.geolocation) {
    el.locate.hidden = false;
    el.locate.addEventListener('click', function () {
      setStatus(T.locating);
      navigator.geolocation.getCurrentPosition(function (pos) {
        var lat = pos.coords.latitude;
        var lon = pos.coords.longitude;
        map.setView([lat, lon], Math.max(map.getZoom(), 15));
        setOrigin(lat, lon);
      }, function () {
        setStatus(T.locateFailed, 'error');
      }, { enableHighAccuracy: true, timeout: 10000, maximumAge: 60000 });
    });
  }

  // ----- start -----
  var ready = api('/api/v1/map/layers', { datum: 'wgs84' }).then(drawLayers, function (err) {
    el.map.setAttribute('data-ready', 'error');
    setStatus(T.layersError + err.message, 'error');
  });
  var params = new URLSearchParams(window.location.search);
  var startLat = Number(params.get('lat'));
  var startLon = Number(params.get('lon'));
  if (params.get('lat') && params.get('lon') && isFinite(startLat) && isFinite(startLon)) {
    map.setView([startLat, startLon], Math.max(map.getZoom(), 15));
  } else {
    startLat = centre[0];
    startLon = centre[1];
  }
  // Stations first, then the list (so that the result labels are pinned).
  ready.then(function () { return setOrigin(startLat, startLon); });

  window.lianxinMap = {
    map: map,
    setOrigin: setOrigin,
    refresh: refresh,
    origin: function () { return origin ? { lat: origin.lat, lon: origin.lon } : null; },
    ready: ready,
  };
})();
