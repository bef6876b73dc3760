// The preprocessing geometry of a remote model, computed from the image's size alone: the remote
// server never says how it resized the image, so the user's `llava.remote.preprocess` setting names
// the mode, and the box overlay maps the answer's boxes back through the same formulas the engine's
// ImageGeometry documents (inputX = (x + padLeft) * scaleX - cropLeft).

import type { ImageGeometry, PreprocessMode } from '../core';

/** `size`: the square the remote model sees (336 for LLaVA-1.5; only ratios matter for normalised boxes). */
export function remoteGeometry(mode: PreprocessMode, width: number, height: number, size = 336): ImageGeometry {
  const base = { mode, originalWidth: width, originalHeight: height, inputWidth: size, inputHeight: size, padLeft: 0, padTop: 0, cropLeft: 0, cropTop: 0 };
  if (mode === 'resize') return { ...base, scaleX: size / width, scaleY: size / height };
  if (mode === 'pad') {
    const side = Math.max(width, height);
    const scale = size / side;
    return { ...base, padLeft: Math.floor((side - width) / 2), padTop: Math.floor((side - height) / 2), scaleX: scale, scaleY: scale };
  }
  // crop: shortest edge to `size`, then the centre `size` x `size`
  const scale = size / Math.min(width, height);
  return { ...base, scaleX: scale, scaleY: scale, cropLeft: Math.round((width * scale - size) / 2), cropTop: Math.round((height * scale - size) / 2) };
}
