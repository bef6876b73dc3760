// A copy of a model folder whose decoder keeps its weights in external data (`decoder_model_merged.onnx_data`,
// each tensor at a 4 KiB-aligned offset), as exporters write graphs past 2 GB and `llava convert` writes any over
// 128 MiB: the layout the engine loads with its decoder edits. The other files are linked.
//
//   npx tsx bench/externalize.ts --from test/fixtures/models/bench-207m --out /tmp/bench-207m-external
//   npx tsx bench/engine.bench.ts --model-dir /tmp/bench-207m-external --dtype fp32 --baseline HEAD
//
// The whole graph is decoded in memory (twice the file's size): for benchmark-sized models, not for 7B.

import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { externalDecoderCopy } from '../test/helpers/externalCopy';

const { values } = parseArgs({ options: { from: { type: 'string' }, out: { type: 'string' }, file: { type: 'string', default: 'decoder_model_merged.onnx' } } });
if (!values.from || !values.out) throw new Error('usage: externalize.ts --from DIR --out DIR [--file decoder_model_merged.onnx]');
const out = path.resolve(values.out);
const bytes = externalDecoderCopy(path.resolve(values.from), out, values.file!);
console.log(`${out}: onnx/${values.file} + ${values.file}_data (${(bytes / 2 ** 20).toFixed(0)} MiB)`);
