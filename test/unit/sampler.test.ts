import assert from 'node:assert/strict';
import { test } from 'node:test';
import { applyRepetitionPenalty, argmax, Sampler, seededRandom } from '../../src/engine/sampler';

test('greedy picks the first maximum, like torch.argmax', () => {
  assert.equal(argmax([0.1, 3, -1, 3, 2]), 1);
  assert.equal(new Sampler({}).sample(Float32Array.from([0, 1, 5, 5]), []), 2);
  assert.equal(new Sampler({ temperature: 0 }).sample(Float32Array.from([9, 1]), []), 0);
});

test('repetition penalty divides positive and multiplies negative logits once per distinct token', () => {
  const logits = Float32Array.from([2, -2, 1, 4]);
  applyRepetitionPenalty(logits, [0, 0, 1], 2);
  assert.deepEqual(Array.from(logits), [1, -4, 1, 4]);
  // a penalised favourite loses to the runner-up under greedy
  assert.equal(new Sampler({ repetitionPenalty: 3 }).sample(Float32Array.from([3, 2]), [0]), 1);
});

test('seeded sampling is reproducible and differs across seeds', () => {
  const logits = () => Float32Array.from({ length: 50 }, (_, i) => Math.sin(i) * 2);
  const draw = (seed: number) => {
    const s = new Sampler({ temperature: 1, seed });
    return Array.from({ length: 30 }, () => s.sample(logits(), []));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
});

test('top-k 1 and tiny top-p both reduce sampling to greedy', () => {
  const logits = Float32Array.from([0.5, 2.5, 2.4, -1]);
  for (let seed = 0; seed < 20; seed++) {
    assert.equal(new Sampler({ temperature: 1.5, topK: 1, seed }).sample(Float32Array.from(logits), []), 1);
    assert.equal(new Sampler({ temperature: 1.5, topP: 0.01, seed }).sample(Float32Array.from(logits), []), 1);
  }
});

test('top-k restricts draws to the k best tokens; frequencies follow the softmax', () => {
  const logits = Float32Array.from([Math.log(1), Math.log(3), Math.log(6), 0.5]);
  const s = new Sampler({ temperature: 1, topK: 3, seed: 1 });
  const counts = [0, 0, 0, 0];
  const n = 6000;
  for (let i = 0; i < n; i++) counts[s.sample(Float32Array.from(logits), [])]++;
  assert.equal(counts[0], 0, 'token 0 is outside the top 3');
  const z = 3 + 6 + Math.exp(0.5);
  assert.ok(Math.abs(counts[2] / n - 6 / z) < 0.03, `p(2) ${counts[2] / n} vs ${6 / z}`);
  assert.ok(Math.abs(counts[1] / n - 3 / z) < 0.03, `p(1) ${counts[1] / n} vs ${3 / z}`);
});

test('seededRandom is uniform-ish in [0, 1)', () => {
  const r = seededRandom(42);
  let sum = 0;
  for (let i = 0; i < 10000; i++) {
    const x = r();
    assert.ok(x >= 0 && x < 1);
    sum += x;
  }
  assert.ok(Math.abs(sum / 10000 - 0.5) < 0.02);
});
