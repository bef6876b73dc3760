// A copy of a model folder whose decoder keeps its weights in external data (`<file>_data`, each tensor at a
// 4 KiB-aligned offset), as exporters write graphs past 2 GB and `llava convert` writes any over 128 MiB: the
// layout the engine loads with its decoder edits (onnxView.ts decoderEdits). The other files are linked; config.json
// is rewritten to tell transformers.js about the data file. The graph is decoded whole in memory (twice the file's
// size): for test and benchmark models, not for 7B.

import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { onnx } from '../../src/engine/onnxProto';

/** Writes the copy to `out` (replacing it); returns the data file's size in bytes. */
export function externalDecoderCopy(from: string, out: string, name = 'decoder_model_merged.onnx'): number {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(path.join(out, 'onnx'), { recursive: true });
  for (const sub of ['', 'onnx']) {
    for (const f of readdirSync(path.join(from, sub))) {
      const src = path.join(from, sub, f);
      if (statSync(src).isDirectory() || (sub === 'onnx' && f === name) || (sub === '' && f === 'config.json')) continue;
      symlinkSync(realpathSync(src), path.join(out, sub, f));
    }
  }
  const model = onnx().ModelProto.decode(readFileSync(path.join(from, 'onnx', name)));
  const dataName = `${name}_data`;
  const fd = openSync(path.join(out, 'onnx', dataName), 'w');
  let offset = 0;
  try {
    for (const t of model.graph!.initializer!) {
      const raw = t.rawData;
      if (!raw || raw.length < 1024) continue; // small constants stay inline, as exporters leave them
      offset = Math.ceil(offset / 4096) * 4096;
      writeSync(fd, raw, 0, raw.length, offset);
      t.rawData = new Uint8Array(0);
      t.dataLocation = onnx().TensorProto.DataLocation.EXTERNAL;
      t.externalData = [
        { key: 'location', value: dataName },
        { key: 'offset', value: String(offset) },
        { key: 'length', value: String(raw.length) },
      ];
      offset += raw.length;
    }
  } finally {
    closeSync(fd);
  }
  writeFileSync(path.join(out, 'onnx', name), onnx().ModelProto.encode(model).finish());
  // transformers.js fetches `<file>_data` only where the config says so
  const config = JSON.parse(readFileSync(path.join(from, 'config.json'), 'utf8'));
  config['transformers.js_config'] = { ...config['transformers.js_config'], use_external_data_format: { ...config['transformers.js_config']?.use_external_data_format, [name]: 1 } };
  writeFileSync(path.join(out, 'config.json'), JSON.stringify(config, null, 2));
  return offset;
}

/** externalDecoderCopy of a fixture folder into a new temporary folder (the caller removes it); returns its path. */
export function externalDecoderTempCopy(from: string): string {
  const out = mkdtempSync(path.join(os.tmpdir(), 'llava-external-'));
  externalDecoderCopy(from, out);
  return out;
}
