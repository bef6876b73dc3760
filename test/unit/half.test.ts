import assert from 'node:assert/strict';
import { test } from 'node:test';
import { floatToHalfBits, fromHalf, halfBitsToFloat, toHalf } from '../../src/engine/half';

test('known float16 bit patterns', () => {
  const cases: [number, number][] = [
    [0, 0x0000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [0.5, 0x3800],
    [2 ** -24, 0x0001], [2 ** -14, 0x0400], [Infinity, 0x7c00], [1e6, 0x7c00], [1 / 3, 0x3555],
  ];
  for (const [f, h] of cases) {
    assert.equal(floatToHalfBits(f), h, `encode ${f}`);
    if (Number.isFinite(f) && f <= 65504) assert.ok(Math.abs(halfBitsToFloat(h) - f) <= Math.abs(f) * 1e-3 + 1e-8, `decode ${f}`);
  }
  assert.ok(Number.isNaN(halfBitsToFloat(floatToHalfBits(NaN))));
});

test('round trip of every finite half value is exact', () => {
  for (let h = 0; h < 0x10000; h++) {
    const exp = (h >>> 10) & 0x1f;
    if (exp === 0x1f) continue;
    assert.equal(floatToHalfBits(halfBitsToFloat(h)), h);
  }
  const xs = Float32Array.from([0.1, -3.25, 1000.5]);
  assert.deepEqual(Array.from(fromHalf(toHalf(xs))).map((x) => +x.toFixed(2)), [0.1, -3.25, 1000.5]);
});

test('ties round to even', () => {
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: rounds to 1 (even mantissa)
  assert.equal(floatToHalfBits(1 + 2 ** -11), 0x3c00);
  // 1 + 3 * 2^-11 is halfway between 1 + 2^-10 and 1 + 2^-9: rounds up to the even one
  assert.equal(floatToHalfBits(1 + 3 * 2 ** -11), 0x3c02);
});
