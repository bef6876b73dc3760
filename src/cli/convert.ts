// `llava convert`: a llava-hf checkpoint folder (safetensors) -> a model folder the engine loads
// (transformers.js layout), in-process, without Python. A rerun resumes: finished parts are kept.

import { CONVERT_DTYPES, Q4_BLOCK_SIZES, convertCheckpoint, type ConvertDtype, type ConvertProgress, type Q4BlockSize } from '../convert';
import { estimateEta, formatProgressLine } from '../convert-process';
import { oneOf, parse, UsageError, type CliCommand } from './args';

const USAGE = `Usage: llava convert --from DIR --out DIR [--dtype q4,fp32,...] [--graph hub|fast] [--q4-scales absmax|search]
                     [--q4-block 16|32|64|128] [--progress text|json]

Converts a llava-hf LLaVA checkpoint (e.g. llava-hf/llava-1.5-7b-hf: config.json, model*.safetensors,
tokenizer and template files) into ONNX files the engine and transformers.js load.

  --from DIR        the checkpoint folder (model.safetensors or model.safetensors.index.json + shards)
  --out DIR         the model folder to write (onnx/*.onnx, configs, tokenizer)
  --dtype LIST      comma-separated: fp32, fp16 (fp16 weights, float32 I/O), q4 (4-bit MatMulNBits,
                    block 32), q4f16 (q4 with fp16 weights elsewhere); default q4
  --graph KIND      the decoder graph: hub (plain ONNX ops, like the Hub's exports; default) or fast
                    (onnxruntime contrib ops: GroupQueryAttention, RotaryEmbedding, SimplifiedLayerNormalization;
                    fp32 and q4 only). The engine runs either; transformers.js needs hub.
  --q4-scales HOW   how q4 picks each block's scale: absmax (the block's largest weight on the end code, as
                    onnxruntime's quantizer and the Hub's files; default) or search (the scale of least squared
                    error among 16; a few percent less error per weight, about 7x the quantizing time)
  --q4-block N      q4 weights per scale: 32 (the Hub's files; default), 16, 64 or 128. With its f32 scales a
                    weight takes 4 + 32/N bits; 16 suits very narrow models (hidden size 32 or 64)
  --progress KIND   text: one updating line on stderr (default on a terminal); json: one JSON object per
                    line on stdout (part, bytes read of total, elapsed and ETA seconds) and a last
                    {"type":"done"} line, for programs (the VS Code extension runs the converter so)
Memory stays near the largest tensor; free disk space is checked first. Interrupted? Run the same
command again: finished parts are not redone.
`;

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}

/** One updating line on a terminal; JSON lines (on stderr, like caption) when stderr is not one. */
function textPrinter(): (p: ConvertProgress) => void {
  const tty = process.stderr.isTTY;
  const started = performance.now();
  let last = 0;
  return (p) => {
    const now = performance.now();
    if (p.state === 'tensor' && now - last < (tty ? 200 : 2000)) return;
    last = now;
    const seconds = (now - started) / 1000;
    const rate = p.bytesRead / 2 ** 20 / Math.max(seconds, 1e-3);
    const eta = rate > 0 ? (p.bytesTotal - p.bytesRead) / 2 ** 20 / rate : 0;
    if (!tty) {
      process.stderr.write(JSON.stringify({ type: 'progress', part: p.part.file, state: p.state, bytesRead: p.bytesRead, bytesTotal: p.bytesTotal }) + '\n');
      return;
    }
    const pct = ((100 * p.bytesRead) / Math.max(1, p.bytesTotal)).toFixed(1);
    const what = p.state === 'skipped' ? 'already done' : p.tensor ?? p.state;
    process.stderr.write(`\r\x1b[K[${p.partIndex + 1}/${p.partCount}] ${p.part.file} ${pct}% ${rate.toFixed(0)} MiB/s ETA ${eta.toFixed(0)} s  ${what}`.slice(0, process.stderr.columns || 120));
  };
}

/** `--progress json`: src/convert-process's line format on stdout, at most every 250 ms within a part. */
function jsonPrinter(): (p: ConvertProgress) => void {
  const started = performance.now();
  let last = 0;
  let skippedBytes = 0;
  return (p) => {
    const now = performance.now();
    if (p.state === 'skipped') skippedBytes = p.bytesRead;
    if (p.state === 'tensor' && now - last < 250) return;
    last = now;
    const elapsedS = (now - started) / 1000;
    const etaS = estimateEta(p.bytesRead, p.bytesTotal, elapsedS, skippedBytes);
    process.stdout.write(
      formatProgressLine({
        type: 'progress', part: p.part.file, partIndex: p.partIndex, partCount: p.partCount, state: p.state,
        bytesRead: p.bytesRead, bytesTotal: p.bytesTotal, elapsedS: Math.round(elapsedS * 10) / 10,
        ...(etaS !== undefined ? { etaS: Math.round(etaS) } : {}),
      }),
    );
  };
}

async function run(args: string[]): Promise<number> {
  const { values } = parse(args, { from: { type: 'string' }, out: { type: 'string' }, dtype: { type: 'string', default: 'q4' }, graph: { type: 'string', default: 'hub' }, 'q4-scales': { type: 'string', default: 'absmax' }, 'q4-block': { type: 'string', default: '32' }, progress: { type: 'string' } }, USAGE);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.from) throw new UsageError('--from DIR is required', USAGE);
  if (!values.out) throw new UsageError('--out DIR is required', USAGE);
  const graph = oneOf('graph', values.graph!, ['hub', 'fast'] as const, USAGE);
  const q4Scales = oneOf('q4-scales', values['q4-scales']!, ['absmax', 'search'] as const, USAGE);
  const q4Block = Number(oneOf('q4-block', values['q4-block']!, Q4_BLOCK_SIZES.map(String), USAGE)) as Q4BlockSize;
  const dtypes = [...new Set(values.dtype!.split(',').map((d) => oneOf('dtype', d.trim(), CONVERT_DTYPES, USAGE)))] as ConvertDtype[];
  const progress = values.progress === undefined ? 'text' : oneOf('progress', values.progress, ['text', 'json'] as const, USAGE);
  const json = progress === 'json';
  const result = convertCheckpoint({ from: values.from, out: values.out, dtypes, graph, q4Scales, q4Block, onProgress: json ? jsonPrinter() : textPrinter() });
  const written = result.parts.filter((p) => !result.skipped.includes(p.file));
  if (json) {
    process.stdout.write(formatProgressLine({ type: 'done', out: values.out, written: written.length, skipped: result.skipped.length, seconds: Math.round(result.seconds * 10) / 10 }));
    return 0;
  }
  if (process.stderr.isTTY) process.stderr.write('\n');
  process.stdout.write(
    `converted ${result.spec.name}: ${written.length} part(s) written, ${result.skipped.length} already done; ` +
      `${mib(result.bytesRead)} read in ${result.seconds.toFixed(1)} s -> ${values.out}\n`,
  );
  return 0;
}

export const convertCommand: CliCommand = { name: 'convert', summary: 'convert a llava-hf checkpoint (safetensors) to ONNX', usage: USAGE, run };
