// A copy of a model folder whose decoder keeps its weights in external data (`decoder_model_merged.onnx_data`,
// each tensor at a 4 KiB-aligned offset), as exporters write graphs past 2 GB and `llava convert` writes any over
// 128 MiB: the layout the engine loads with its LM head fed the last position only. The other files are linked.
//
//   npx tsx bench/externalize.ts --from test/fixtures/models/bench-207m --out /tmp/bench-207m-external
//   npx tsx bench/engine.bench.ts --model-dir /tmp/bench-207m-external --dtype fp32 --baseline HEAD
//
// The whole graph is decoded in memory (twice the file's size): for benchmark-sized models, not for 7B.

import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { onnx } from '../src/engine/onnxProto';

const { values } = parseArgs({ options: { from: { type: 'string' }, out: { type: 'string' }, file: { type: 'string', default: 'decoder_model_merged.onnx' } } });
if (!values.from || !values.out) throw new Error('usage: externalize.ts --from DIR --out DIR [--file decoder_model_merged.onnx]');
const from = path.resolve(values.from);
const out = path.resolve(values.out);
const name = values.file!;

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
console.log(`${out}: onnx/${name} + ${dataName} (${(offset / 2 ** 20).toFixed(0)} MiB)`);
