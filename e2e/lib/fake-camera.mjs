// Turns a PNG screenshot (a rendered QR code) into a Y4M video that Chromium plays
// as its camera: `--use-fake-device-for-media-stream --use-file-for-fake-video-capture=FILE.y4m`.
// Not a test file.
import { writeFile } from 'node:fs/promises';
import { PNG } from 'pngjs';

/**
 * Decode a PNG (Buffer) to { width, height, data: RGBA Uint8Array }.
 */
export function decodePng(buffer) {
  const png = PNG.sync.read(buffer);
  return { width: png.width, height: png.height, data: png.data };
}

/**
 * Place an RGBA image centred on a white `width`×`height` RGB frame, scaled by a
 * whole factor with nearest-neighbour (up when small, down when too large) so the
 * QR's cells stay sharp squares; transparent pixels count as white.
 * Returns { width, height, rgb: Uint8Array(width*height*3), scale }.
 */
export function frameOf(img, width = 640, height = 480, margin = 16) {
  const room = Math.min(width - 2 * margin, height - 2 * margin);
  const big = Math.max(img.width, img.height);
  let up = 1;
  let down = 1;
  if (big <= room) up = Math.max(1, Math.floor(room / big));
  else down = Math.ceil(big / room);
  const w = Math.floor((img.width * up) / down);
  const h = Math.floor((img.height * up) / down);
  const x0 = Math.floor((width - w) / 2);
  const y0 = Math.floor((height - h) / 2);
  const rgb = new Uint8Array(width * height * 3).fill(255);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(img.height - 1, Math.floor((y * down) / up));
    for (let x = 0; x < w; x++) {
      const sx = Math.min(img.width - 1, Math.floor((x * down) / up));
      const s = (sy * img.width + sx) * 4;
      const a = img.data[s + 3] / 255;
      const o = ((y0 + y) * width + (x0 + x)) * 3;
      for (let k = 0; k < 3; k++) rgb[o + k] = Math.round(img.data[s + k] * a + 255 * (1 - a));
    }
  }
  return { width, height, rgb, scale: up / down };
}

const clamp = (v) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

/**
 * RGB → planar YUV 4:2:0 (BT.601, full range as JPEG, matching `C420jpeg`).
 * Width and height must be even. Returns { y, u, v }.
 */
export function rgbToI420({ width, height, rgb }) {
  const y = new Uint8Array(width * height);
  const cw = width / 2;
  const ch = height / 2;
  const u = new Uint8Array(cw * ch);
  const v = new Uint8Array(cw * ch);
  for (let j = 0; j < height; j++) {
    for (let i = 0; i < width; i++) {
      const o = (j * width + i) * 3;
      y[j * width + i] = clamp(0.299 * rgb[o] + 0.587 * rgb[o + 1] + 0.114 * rgb[o + 2]);
    }
  }
  for (let j = 0; j < ch; j++) {
    for (let i = 0; i < cw; i++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (const [dx, dy] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
        const o = ((2 * j + dy) * width + (2 * i + dx)) * 3;
        r += rgb[o];
        g += rgb[o + 1];
        b += rgb[o + 2];
      }
      r /= 4;
      g /= 4;
      b /= 4;
      u[j * cw + i] = clamp(128 - 0.168736 * r - 0.331264 * g + 0.5 * b);
      v[j * cw + i] = clamp(128 + 0.5 * r - 0.418688 * g - 0.081312 * b);
    }
  }
  return { y, u, v };
}

/**
 * Y4M bytes: the header and `frames` identical frames of the planes.
 */
export function y4m({ width, height }, { y, u, v }, frames = 5) {
  const header = Buffer.from(`YUV4MPEG2 W${width} H${height} F15:1 Ip A1:1 C420jpeg\n`, 'ascii');
  const frameHeader = Buffer.from('FRAME\n', 'ascii');
  const parts = [header];
  for (let f = 0; f < frames; f++) parts.push(frameHeader, y, u, v);
  return Buffer.concat(parts);
}

/**
 * PNG screenshot → a Y4M file at `path` that shows it still, centred on white.
 * Returns the frame's scale factor (for messages).
 */
export async function writeFakeCamera(pngBuffer, path, { width = 640, height = 480, frames = 5 } = {}) {
  const frame = frameOf(decodePng(pngBuffer), width, height);
  await writeFile(path, y4m(frame, rgbToI420(frame), frames));
  return frame.scale;
}
