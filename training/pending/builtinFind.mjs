// Waits for a built-in model that has learned grounding (moves to test/e2e/ui/, its test into `builtinTests` of
// test/e2e/ui/builtin.mjs): in the real workbench, the box the built-in model draws for "Find in Image…" on
// media/samples/shapes.png lands on the named shape. The truth is the scene generator's own record of the image
// (media/samples/shapes.json: every shape's class, colour and box in image pixels).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { withBuiltinPanel } from './builtin.mjs';

const ARTIFACTS = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts');
const CONTEXT = JSON.parse(fs.readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'media', 'samples', 'shapes.json'), 'utf8'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The drawn boxes in image pixels (the webview's rectangles scaled by the shown image's size). */
function drawnBoxes(frame) {
  return frame.locator('body').evaluate(() => {
    const img = document.querySelector('img[data-testid="image"]');
    const r = img.getBoundingClientRect();
    const k = img.naturalWidth / r.width;
    return [...document.querySelectorAll('[data-testid="box"]')].map((b) => {
      const q = b.getBoundingClientRect();
      return [(q.left - r.left) * k, (q.top - r.top) * k, (q.right - r.left) * k, (q.bottom - r.top) * k];
    });
  });
}

export function builtinModelFinds({ page, shots, sandbox }) {
  return withBuiltinPanel(page, sandbox, async (frame, star) => {
    const phrase = `the ${star.colour} ${star.class}`;
    await frame.locator('[data-testid="find"]').fill(phrase);
    await frame.locator('[data-testid="find"]').press('Enter');
    await frame.locator('[data-testid="box"]').first().waitFor({ state: 'attached', timeout: 120_000 });
    const answers = frame.locator('[data-testid="message"][data-role="assistant"]');
    const deadline = Date.now() + 60_000;
    while ((await answers.last().getAttribute('data-state')) !== 'done') {
      assert.ok(Date.now() < deadline, 'the Find answer did not finish');
      await sleep(200);
    }
    const boxes = await drawnBoxes(frame);
    assert.equal(boxes.length, 1, `one box drawn for ${phrase}: ${JSON.stringify(boxes)}`);
    const err = Math.max(...boxes[0].map((v, i) => Math.abs(v - star.box[i])));
    // LLaVA-1.5 writes 2 decimals of the padded side: half a hundredth of it is the format's own precision
    const side = Math.max(CONTEXT.width, CONTEXT.height);
    const tolerance = 4 + 0.005 * side;
    assert.ok(err <= tolerance, `box ${boxes[0].map((v) => v.toFixed(1)).join(', ')} vs the truth ${star.box.join(', ')}: ${err.toFixed(1)} px off (tolerance ${tolerance.toFixed(1)})`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, 'builtin-find.png') });
    await shots.take(page, 'builtin-find');
    return `box for ${phrase} ${err.toFixed(1)} px from the truth at most (tolerance ${tolerance.toFixed(1)})`;
  });
}

export const builtinFindTests = [['Built-in model: its Find box lands on the named shape', builtinModelFinds]];
