#!/usr/bin/env bash
# Re-fetches the vendored browser libraries (gate pass pages, map pages) into
# crates/lianxin-server/assets/vendor/ from the npm registry, at pinned versions.
#
#   bash scripts/vendor-js.sh
#
# To upgrade: change a version below, run this, read the diff, update
# crates/lianxin-server/assets/vendor/README.md, and re-run the e2e gate test.
# The files are plain browser scripts (they define a global), served at
# /assets/vendor/<file>; no CDN is ever used.
set -euo pipefail

JSQR_VERSION=1.4.0               # QR decoder, global `jsQR`, Apache-2.0
QRCODE_GENERATOR_VERSION=2.0.4   # QR encoder, global `qrcode`, MIT
LEAFLET_VERSION=1.9.4            # map, global `L`, BSD-2-Clause (map and mall pages)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/crates/lianxin-server/assets/vendor"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/lianxin-vendor-js.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

cd "$TMP"
npm pack --silent "jsqr@$JSQR_VERSION" "qrcode-generator@$QRCODE_GENERATOR_VERSION" \
  "leaflet@$LEAFLET_VERSION" >/dev/null
mkdir jsqr qrcode-generator leaflet
tar xzf "jsqr-$JSQR_VERSION.tgz" -C jsqr
tar xzf "qrcode-generator-$QRCODE_GENERATOR_VERSION.tgz" -C qrcode-generator
tar xzf "leaflet-$LEAFLET_VERSION.tgz" -C leaflet

mkdir -p "$DEST"
cp jsqr/package/dist/jsQR.js "$DEST/jsQR.js"
cp jsqr/package/LICENSE "$DEST/jsQR.LICENSE"
cp qrcode-generator/package/dist/qrcode.js "$DEST/qrcode.js"
# Leaflet: the minified build and its stylesheet only. The stylesheet names a few
# images (images/layers.png for the layers control, images/marker-icon.png for the
# default marker); the pages use neither (circle markers, divIcon labels, their own
# layer checkboxes), so the images are not copied and nothing asks for them.
cp leaflet/package/dist/leaflet.js "$DEST/leaflet.js"
cp leaflet/package/dist/leaflet.css "$DEST/leaflet.css"
cp leaflet/package/LICENSE "$DEST/leaflet.LICENSE"

# qrcode-generator ships no LICENSE file: its package.json says MIT and the
# source's header says "Copyright (c) 2009 Kazuhiko Arase, Licensed under the MIT
# license". This is the MIT text with that notice.
if [ -f qrcode-generator/package/LICENSE ]; then
  cp qrcode-generator/package/LICENSE "$DEST/qrcode.LICENSE"
else
  license="$(node -p "require('./qrcode-generator/package/package.json').license")"
  if [ "$license" != "MIT" ]; then
    echo "vendor-js.sh: qrcode-generator's license is now '$license', not MIT: check it" >&2
    exit 1
  fi
  cat >"$DEST/qrcode.LICENSE" <<'LICENSE'
qrcode-generator (https://github.com/kazuhikoarase/qrcode-generator)

MIT License

Copyright (c) 2009 Kazuhiko Arase

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.

The word 'QR Code' is registered trademark of DENSO WAVE INCORPORATED
(http://www.denso-wave.com/qrcode/faqpatent-e.html).
LICENSE
fi

( cd "$DEST" && sha256sum jsQR.js qrcode.js leaflet.js leaflet.css )
echo "vendor-js.sh: jsqr $JSQR_VERSION, qrcode-generator $QRCODE_GENERATOR_VERSION and leaflet $LEAFLET_VERSION copied to $DEST" >&2
