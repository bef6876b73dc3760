// Manual timing of the PIL-exact resize on a 4K frame (not a test: no timing asserts in tests).
//   npx tsx test/reference/time_resize.ts
// Prints CPU milliseconds per call (process.cpuUsage) for each preprocess mode, 3840x2160 -> 336/384.
import { geometricPreprocess } from '../../src/engine/preprocess';
import type { PreprocessConfig } from '../../src/core/types';

const width = 3840;
const height = 2160;
const rgb = new Uint8Array(width * height * 3); // [H, W, 3] u8, noise: no flat rows to skip
let seed = 1;
for (let i = 0; i < rgb.length; i++) {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  rgb[i] = seed >>> 24;
}
const base: PreprocessConfig = {
  mode: 'crop', width: 336, height: 336, shortestEdge: 336,
  mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711], rescaleFactor: 1 / 255,
};
const cases: PreprocessConfig[] = [base, { ...base, mode: 'pad' }, { ...base, mode: 'resize', width: 384, height: 384 }];
for (const cfg of cases) {
  const ms: string[] = [];
  for (let run = 0; run < 5; run++) {
    const t0 = process.cpuUsage();
    geometricPreprocess({ rgb, width, height }, cfg);
    const t = process.cpuUsage(t0);
    ms.push(((t.user + t.system) / 1000).toFixed(0));
  }
  console.log(`${cfg.mode.padEnd(6)} -> ${cfg.width}x${cfg.height}: ${ms.join(' ')} ms CPU`);
}
