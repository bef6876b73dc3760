// training/captions.ts: how a caption is read against a scene's record (the measure the training README quotes
// for the built-in model's captions).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { scoreCaption } from '../../training/captions';
import type { PixelBox } from '../../training/data/scene';

const scene = [
  { class: 'square', colour: 'black' },
  { class: 'hexagon', colour: 'green' },
  { class: 'star', colour: 'orange' },
];

test('colour-shape phrases count once per object; sizes between are read; wrong pairs are not', () => {
  assert.deepEqual(scoreCaption('A black square, a medium green hexagon and an orange star on a plain cream background.', scene), { phrases: 3, right: 3 });
  assert.deepEqual(scoreCaption('A black square and a black square and a red star.', scene), { phrases: 3, right: 1 });
  assert.deepEqual(scoreCaption('A Green Hexagon.', scene), { phrases: 1, right: 1 });
});

test('a count word is right only for the number of objects', () => {
  assert.equal(scoreCaption('Three coloured shapes on a plain cream background.', scene).count, true);
  assert.equal(scoreCaption('The image shows six shapes on a pale green background.', scene).count, false);
  assert.equal(scoreCaption('Shapes on a background.', scene).count, undefined);
});

test('"the largest is" is right only for the object of the largest box, ties going to the one further left', () => {
  const boxed: { class: string; colour: string; box: PixelBox }[] = [
    { class: 'square', colour: 'black', box: [260, 123, 418, 281] },
    { class: 'hexagon', colour: 'green', box: [558, 189, 649, 268] },
    { class: 'star', colour: 'orange', box: [10, 10, 60, 60] },
  ];
  assert.equal(scoreCaption('Three shapes on a plain cream background, and the largest is a black square.', boxed).largest, true);
  assert.equal(scoreCaption('Three shapes on a plain cream background, and the largest is a green hexagon.', boxed).largest, false);
  assert.equal(scoreCaption('Three shapes on a plain cream background.', boxed).largest, undefined);
  const tie: { class: string; colour: string; box: PixelBox }[] = [
    { class: 'circle', colour: 'red', box: [300, 0, 400, 100] },
    { class: 'star', colour: 'blue', box: [0, 0, 100, 100] },
  ];
  assert.equal(scoreCaption('Two shapes, and the largest is a blue star.', tie).largest, true);
  assert.equal(scoreCaption('Two shapes, and the largest is a red circle.', tie).largest, false);
});
