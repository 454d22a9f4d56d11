// CI: opens the rendered report in headless Chromium and checks that it loads with no console errors,
// no page errors and no network requests, that every chart's text renders at 11 px or more on a
// 1280-pixel-wide window, then takes a full-page screenshot and checks it is not blank.
// Usage: node check_report.mjs REPORT.html SCREENSHOT.png
import { chromium } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inflateSync } from 'node:zlib';

const [report, shot] = process.argv.slice(2);
if (!report || !shot) {
  console.error('usage: node check_report.mjs REPORT.html SCREENSHOT.png');
  process.exit(2);
}
const url = pathToFileURL(resolve(report)).href;
const problems = [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  args: ['--no-sandbox'],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('request', (r) => { if (r.url() !== url) problems.push(`network request: ${r.url()}`); });
await page.goto(url, { waitUntil: 'load' });
const figures = await page.locator('figure svg').count();
const sections = await page.locator('section.dataset:not(#provenance)').count();
// The smallest chart text as rendered: its font size times the scale the page draws its chart at.
const smallest = await page.evaluate(() => {
  let min = { px: Infinity, text: '' };
  for (const svg of document.querySelectorAll('figure svg')) {
    const scale = svg.getBoundingClientRect().width / svg.width.baseVal.value;
    for (const t of svg.querySelectorAll('text')) {
      const size = parseFloat(t.getAttribute('font-size') || getComputedStyle(t).fontSize);
      if (t.textContent.trim() && size * scale < min.px) min = { px: size * scale, text: t.textContent.trim() };
    }
  }
  return min;
});
if (smallest.px < 11) problems.push(`chart text renders at ${smallest.px.toFixed(1)} px (< 11) on a 1280-px window: "${smallest.text}"`);
await page.screenshot({ path: shot, fullPage: true });
await browser.close();

// Decodes the screenshot (8-bit RGB or RGBA, not interlaced, as Chromium writes it) and measures how
// much of it is not the background colour.
function pixels(file) {
  const png = readFileSync(file);
  let pos = 8, width = 0, height = 0, channels = 0;
  const idat = [];
  while (pos < png.length) {
    const len = png.readUInt32BE(pos);
    const type = png.toString('ascii', pos + 4, pos + 8);
    const data = png.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      const [depth, colour, , , interlace] = data.subarray(8, 13);
      if (depth !== 8 || interlace !== 0 || ![2, 6].includes(colour)) throw new Error(`unexpected PNG format ${depth}/${colour}/${interlace}`);
      channels = colour === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(data);
    pos += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const out = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    for (let x = 0; x < stride; x++) {
      const v = raw[y * (stride + 1) + 1 + x];
      const a = x >= channels ? out[y * stride + x - channels] : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels] : 0;
      let p;
      switch (filter) {
        case 0: p = v; break;
        case 1: p = v + a; break;
        case 2: p = v + b; break;
        case 3: p = v + ((a + b) >> 1); break;
        case 4: { const q = a + b - c, pa = Math.abs(q - a), pb = Math.abs(q - b), pc = Math.abs(q - c);
          p = v + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c); break; }
        default: throw new Error(`bad PNG filter ${filter}`);
      }
      out[y * stride + x] = p & 255;
    }
  }
  return { width, height, channels, out };
}

const { width, height, channels, out } = pixels(shot);
const background = out.subarray(0, 3).join(',');
const colours = new Set();
let differing = 0;
for (let i = 0; i < width * height; i++) {
  const px = out.subarray(i * channels, i * channels + 3).join(',');
  if (px !== background) differing++;
  if (colours.size < 10000) colours.add(px);
}
const share = differing / (width * height);
console.log(`report: ${sections} dataset section(s), ${figures} charts, smallest chart text ${smallest.px.toFixed(1)} px; screenshot ${width}x${height}, ` +
  `${(100 * share).toFixed(1)}% non-background pixels, ${colours.size} colours`);
if (sections < 1 || figures < 1) problems.push('the page shows no dataset section or no chart');
if (share < 0.02 || colours.size < 16) problems.push('the screenshot is blank or nearly so');
if (problems.length) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log('report check: no console errors, no network requests, screenshot not blank');
