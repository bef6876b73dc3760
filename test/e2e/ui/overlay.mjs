// UI test of the box overlay in the real workbench: a KNOWN LLaVA-1.5 answer with boxes is injected
// (test-only command; the tiny model's own answers never contain boxes) for the wide screenshot
// media/samples/screenshot.png (1600x900) as a pad-mode model saw it, and the rectangles drawn in the
// chat panel must sit on the image regions the boxes name, within 2 px, at two zoom levels.
//
// Expected regions are worked out here from LLaVA-1.5's pad rule alone (expand2square: the 1600x900
// image centred in a 1600x1600 square, so 350 px of padding above; a norm1 value v is v*1600 px of
// the square), not from the extension's code.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { expectImageShown, panelWithImage, runCommand } from '../lib/webview.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const IMAGE = 'screenshot.png';
const W = 1600;
const H = 900;
const SIDE = Math.max(W, H);
const PAD_TOP = (SIDE - H) / 2; // 350
const INPUT = 336; // LLaVA-1.5's CLIP input; any size gives the same original-pixel boxes

const BOXES = [
  { text: '[0.03, 0.24, 0.19, 0.74]', v: [0.03, 0.24, 0.19, 0.74] }, // the file tree
  { text: '[0.75, 0.26, 0.99, 0.47]', v: [0.75, 0.26, 0.99, 0.47] }, // the grid
  { text: '[0.75, 0.50, 0.99, 0.62]', v: [0.75, 0.5, 0.99, 0.62] }, // the question box
];
// entirely inside the padding band above the image (y < 350 of the square): must not be drawn
const IN_PADDING = '[0.40, 0.02, 0.60, 0.15]';
const ANSWER =
  `The file tree is at ${BOXES[0].text}. The grid ${BOXES[1].text} sits above the question box ${BOXES[2].text}. ` +
  `Nothing is at ${IN_PADDING}.`;

/** original-image pixels of a norm1 box in the padded square */
function expectedRect([x1, y1, x2, y2]) {
  const x = x1 * SIDE;
  const y = y1 * SIDE - PAD_TOP;
  return { x, y, width: x2 * SIDE - x, height: y2 * SIDE - PAD_TOP - y };
}

/** The geometry a pad-mode LLaVA-1.5 engine reports for this image (types.ts ImageGeometry). */
const GEOMETRY = {
  mode: 'pad', originalWidth: W, originalHeight: H, inputWidth: INPUT, inputHeight: INPUT,
  padLeft: 0, padTop: PAD_TOP, scaleX: INPUT / SIDE, scaleY: INPUT / SIDE, cropLeft: 0, cropTop: 0,
};

/** On-screen rectangles (inside the webview) of the image and of every drawn box. */
function measure(frame) {
  return frame.locator('body').evaluate(() => {
    const img = document.querySelector('img[data-testid="image"]');
    const r = img.getBoundingClientRect();
    const boxes = [...document.querySelectorAll('[data-testid="box"]')].map((b) => {
      const q = b.getBoundingClientRect();
      return { left: q.left, top: q.top, width: q.width, height: q.height };
    });
    return {
      img: { left: r.left, top: r.top, width: r.width, height: r.height },
      natural: { width: img.naturalWidth, height: img.naturalHeight },
      boxes,
      labels: [...document.querySelectorAll('[data-testid="box-label"]')].map((l) => l.textContent),
      zoom: document.querySelector('.zoom-label')?.textContent ?? '',
    };
  });
}

function checkPositions(m, where) {
  assert.deepEqual(m.natural, { width: W, height: H }, `${where}: the image's natural size`);
  assert.equal(m.boxes.length, BOXES.length, `${where}: ${m.boxes.length} boxes drawn (the one in the padding must be dropped)`);
  const k = m.img.width / W; // screen px per image px
  assert.ok(Math.abs(m.img.height / H - k) < 0.01, `${where}: the image is shown with its aspect ratio`);
  BOXES.forEach((b, i) => {
    const e = expectedRect(b.v);
    const want = { left: m.img.left + e.x * k, top: m.img.top + e.y * k, width: e.width * k, height: e.height * k };
    for (const key of ['left', 'top', 'width', 'height']) {
      assert.ok(
        Math.abs(m.boxes[i][key] - want[key]) <= 2,
        `${where}: box ${i} ${key} is ${m.boxes[i][key].toFixed(1)} px, expected ${want[key].toFixed(1)} (±2)`,
      );
    }
  });
}

export async function overlayWideScreenshot({ page, shots }) {
  await inject(page, { image: IMAGE, question: 'Where are the file tree, the grid and the question box?', answer: ANSWER, geometry: GEOMETRY, frame: 'norm1' });

  const frame = await panelWithImage(page, IMAGE);
  await expectImageShown(frame);
  await frame.locator('[data-testid="box"]').first().waitFor({ state: 'attached', timeout: 15_000 });

  // zoom level 1: fit to the view
  const fit = await measure(frame);
  checkPositions(fit, `fit (${fit.zoom})`);
  assert.equal(fit.labels.length, BOXES.length);
  assert.ok(fit.labels[0].includes('file tree'), `first label ${JSON.stringify(fit.labels[0])}`);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'overlay-wide.png') });

  // zoom level 2: two steps in (1.25^2)
  const zoomIn = frame.locator('vscode-icon[label="Zoom in"]');
  await zoomIn.click();
  await zoomIn.click();
  await frame.locator('.zoom-label').filter({ hasNotText: fit.zoom }).waitFor({ timeout: 5_000 });
  const zoomed = await measure(frame);
  assert.ok(zoomed.img.width > fit.img.width * 1.4, `zoom changed the size: ${fit.img.width} -> ${zoomed.img.width}`);
  checkPositions(zoomed, `zoomed (${zoomed.zoom})`);
  await shots.take(page, 'overlay-zoomed');

  // hover links: coordinates in the answer <-> the box on the image
  const refs = frame.locator('[data-testid="box-ref"]');
  assert.equal(await refs.count(), BOXES.length, 'each drawn box has its coordinates marked in the answer');
  assert.equal((await refs.nth(1).textContent()).trim(), BOXES[1].text);
  await frame.locator('vscode-icon[label="Fit to view"]').click();
  await refs.nth(1).hover();
  await frame.locator('[data-testid="box"].hover[data-index="1"]').waitFor({ state: 'attached', timeout: 5_000 });
  await frame.locator('[data-testid="box"][data-index="2"]').hover({ force: true });
  await frame.locator('[data-testid="box-ref"].hover[data-index="2"]').waitFor({ state: 'attached', timeout: 5_000 });
  await shots.take(page, 'overlay-hover');

  // the toggle hides and shows them again
  await frame.locator('[data-testid="toggle-boxes"]').click();
  assert.equal(await frame.locator('[data-testid="box"]').count(), 0, 'Hide boxes left boxes drawn');
  await frame.locator('[data-testid="toggle-boxes"]').click();
  assert.equal(await frame.locator('[data-testid="box"]').count(), BOXES.length, 'Show boxes did not bring them back');

  return `3 boxes within 2 px at ${fit.zoom} and ${zoomed.zoom}; padding box dropped; hover both ways; toggle; screenshot artifacts/overlay-wide.png`;
}

async function inject(page, request) {
  await runCommand(page, 'Test: Inject Answer with Boxes');
  const box = page.locator('.quick-input-widget input[type="text"]').first();
  await box.waitFor({ state: 'visible', timeout: 10_000 });
  await box.fill(JSON.stringify(request));
  await box.press('Enter');
}

/** Waits for the newest user message to contain `pattern` and the answer after it to finish. */
async function lastExchange(frame, countBefore, timeout = 120_000) {
  const users = frame.locator('[data-testid="message"][data-role="user"]');
  await users.nth(countBefore).waitFor({ state: 'attached', timeout: 15_000 });
  const question = ((await users.nth(countBefore).locator('.message-body').textContent()) ?? '').trim();
  const answers = frame.locator('[data-testid="message"][data-role="assistant"]');
  const deadline = Date.now() + timeout;
  for (;;) {
    const n = await answers.count();
    const state = n ? await answers.nth(n - 1).getAttribute('data-state') : null;
    if (n > countBefore && (state === 'done' || state === 'error')) return { question, state };
    if (Date.now() > deadline) throw new Error(`the answer to ${JSON.stringify(question)} did not finish`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * Find… and Describe region reach the model with its referring prompts. The tiny model is a local
 * folder outside the catalog, so LLaVA-1.5's prompts apply; it preprocesses with a CLIP centre crop
 * (84 px), so after its first real answer the region is written in the crop's frame: the centre
 * 800x450 of the screenshot is x (400-350)/900 = 0.06 .. (1200-350)/900 = 0.94 and y 0.25 .. 0.75.
 */
export async function findAndDescribeRegion({ page, shots }) {
  const frame = await panelWithImage(page, IMAGE);
  const users = frame.locator('[data-testid="message"][data-role="user"]');
  let before = await users.count();
  await frame.locator('[data-testid="find"]').fill('the grid');
  await frame.locator('[data-testid="find"]').press('Enter');
  const f = await lastExchange(frame, before);
  assert.equal(f.question, 'Please provide the bounding box coordinate of the region this sentence describes: the grid');
  assert.equal(f.state, 'done');
  // the injected boxes stay drawn (the tiny model's answer has none of its own)
  assert.equal(await frame.locator('[data-testid="box"]').count(), BOXES.length);

  before = await users.count();
  await frame.locator('[data-testid="describe-region"]').click();
  await frame.locator('[data-testid="region"]').waitFor({ state: 'attached', timeout: 5_000 });
  await shots.take(page, 'overlay-region');
  await frame.locator('.image-viewport').press('Enter');
  // the region's question lands in the question box, for the user to edit before sending
  const box = frame.locator('[data-testid="question"]');
  const deadline = Date.now() + 15_000;
  while (!/^Please provide a short description for this region/.test(await box.inputValue())) {
    assert.ok(Date.now() < deadline, `no draft question in the box: ${JSON.stringify(await box.inputValue())}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(await users.count(), before, 'the region question was sent before the user could edit it');
  await shots.take(page, 'overlay-region-draft');
  await box.press('Enter');
  const d = await lastExchange(frame, before);
  const m = /^Please provide a short description for this region: \[(\d\.\d\d), (\d\.\d\d), (\d\.\d\d), (\d\.\d\d)\]$/.exec(d.question);
  assert.ok(m, `describe-region question ${JSON.stringify(d.question)}`);
  const [x1, y1, x2, y2] = m.slice(1).map(Number);
  assert.ok(Math.abs(x1 - 0.056) <= 0.011 && Math.abs(x2 - 0.944) <= 0.011, `x ${x1}, ${x2}: not in the crop's frame`);
  assert.deepEqual([y1, y2], [0.25, 0.75]);
  return `find prompt sent and answered; region asked as ${m.slice(1).join(', ')}`;
}

/**
 * An EXIF-rotated JPEG (stored 360x240, orientation 6) is shown upright (240x360), the frame the
 * engine's geometry uses, so a box on its top-left quarter is drawn on the shown top-left quarter.
 */
export async function exifRotatedUpright({ page }) {
  const sharp = createRequire(path.join(REPO, 'package.json'))('sharp');
  const file = path.join(REPO, 'media', 'samples', 'exif_rotated.jpg');
  const meta = await sharp(file).metadata();
  const swap = (meta.orientation ?? 1) >= 5;
  const w = swap ? meta.height : meta.width;
  const h = swap ? meta.width : meta.height;
  assert.ok(swap, `exif_rotated.jpg has orientation ${meta.orientation}: not a rotation test`);
  const geometry = { mode: 'resize', originalWidth: w, originalHeight: h, inputWidth: 336, inputHeight: 336, padLeft: 0, padTop: 0, scaleX: 336 / w, scaleY: 336 / h, cropLeft: 0, cropTop: 0 };
  await inject(page, { image: file, question: 'Where is the top-left quarter?', answer: 'Here: [0.00, 0.00, 0.50, 0.50]', geometry, frame: 'norm1' });
  const frame = await panelWithImage(page, 'exif_rotated.jpg');
  await expectImageShown(frame);
  await frame.locator('[data-testid="box"]').first().waitFor({ state: 'attached', timeout: 15_000 });
  const m = await measure(frame);
  assert.deepEqual(m.natural, { width: w, height: h }, 'the <img> is not shown in the EXIF-oriented frame');
  const k = m.img.width / w;
  const want = { left: m.img.left, top: m.img.top, width: (w / 2) * k, height: (h / 2) * k };
  for (const key of ['left', 'top', 'width', 'height']) assert.ok(Math.abs(m.boxes[0][key] - want[key]) <= 2, `${key}: ${m.boxes[0][key]} vs ${want[key]}`);
  return `shown ${w}x${h} (stored ${meta.width}x${meta.height}); box on the top-left quarter`;
}

export const overlayTests = [
  ['Overlay: boxes of a known answer sit on the wide screenshot (pad mode) at two zoom levels', overlayWideScreenshot],
  ['Overlay: Find… and Describe region send the model its referring prompts', findAndDescribeRegion],
  ['Overlay: an EXIF-rotated JPEG is shown upright and its box lines up', exifRotatedUpright],
];
