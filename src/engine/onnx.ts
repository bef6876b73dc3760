// Thin helpers over onnxruntime-node sessions: create with a readable error, and read the names,
// dtypes and fixed dims from the session's own metadata rather than assuming them.

import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { ModelLoadError } from '../core';
import { decoderEdits, graphOnly } from './onnxView';
import { SPLIT_DECODER_MIN_BYTES, SPLIT_MIN_BYTES, splitCopy, type SplitOptions } from './onnxSplit';

export type Session = ort.InferenceSession;

/**
 * 'decoder': where the file keeps its weights in external data, its graph is loaded edited (onnxView.ts
 * decoderEdits): the logits computed for the last position only, and the run's own keys and values returned
 * beside `present.*`; a file with inline weights, or a graph no edit recognises, is loaded as it is.
 */
export type SessionView = 'file' | 'decoder';

export interface SessionLoad {
  view?: SessionView;
  /** says why an edit or a split that was expected did not happen */
  log?: (line: string) => void;
  /**
   * a file with inline weights (a decoder over 16 MiB, any other part over 128 MiB) is loaded from its split copy
   * (onnxSplit.ts: graph + aligned external data, made once beside it), which loads faster and takes the
   * 'decoder' edits; false: as it is
   */
  split?: Omit<SplitOptions, 'log'> | false;
}

export async function createSession(file: string, options: ort.InferenceSession.SessionOptions, load: SessionLoad = {}): Promise<Session> {
  const { view = 'file', log } = load;
  // a decoder pays for its copy on every prefill (the edit drops the LM head's work on all but one position, a
  // quarter of a 0.5B Qwen's prefill FLOPs at 750 tokens), other parts only in load time
  const minBytes = view === 'decoder' ? SPLIT_DECODER_MIN_BYTES : SPLIT_MIN_BYTES;
  const source = (load.split !== false && splitCopy(file, { minBytes, ...load.split, log })) || file;
  if (view === 'decoder') {
    try {
      const g = graphOnly(source);
      const edited = g && decoderEdits(g.model);
      if (g && edited) {
        const model = edited.model;
        const extra = (options.extra ?? {}) as { session?: Record<string, unknown> };
        return await ort.InferenceSession.create(model, {
          ...options,
          extra: { ...extra, session: { ...extra.session, model_external_initializers_file_folder_path: g.folder } },
        });
      }
    } catch (err) {
      log?.(`${path.basename(file)}: loaded without the decoder edits (${message(err)})`);
    }
  }
  if (source !== file) {
    try {
      return await ort.InferenceSession.create(source, options);
    } catch (err) {
      log?.(`${path.basename(file)}: its split copy did not load (${message(err)}); loading the file as it is`);
    }
  }
  try {
    return await ort.InferenceSession.create(file, options);
  } catch (err) {
    throw new ModelLoadError(`ONNX Runtime could not load ${file}: ${message(err)}`, { cause: err });
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export interface TensorInfo {
  name: string;
  type: ort.Tensor.Type;
  shape: ReadonlyArray<number | string>;
}

export function inputInfo(session: Session, name: string): TensorInfo | undefined {
  const meta = session.inputMetadata.find((m) => m.name === name);
  return meta && meta.isTensor ? { name, type: meta.type, shape: meta.shape } : undefined;
}

export function outputInfo(session: Session, name: string): TensorInfo | undefined {
  const meta = session.outputMetadata.find((m) => m.name === name);
  return meta && meta.isTensor ? { name, type: meta.type, shape: meta.shape } : undefined;
}

/** The dim if the graph fixes it to a number, else undefined (symbolic or unknown). */
export function fixedDim(info: TensorInfo | undefined, axis: number): number | undefined {
  const d = info?.shape[axis];
  return typeof d === 'number' && d > 0 ? d : undefined;
}

export function requireInput(session: Session, file: string, name: string): TensorInfo {
  const info = inputInfo(session, name);
  if (!info) throw new ModelLoadError(`${file}: expected an input named "${name}"; the graph has ${session.inputNames.join(', ')}`);
  return info;
}

export function requireOutput(session: Session, file: string, name: string): TensorInfo {
  const info = outputInfo(session, name);
  if (!info) throw new ModelLoadError(`${file}: expected an output named "${name}"; the graph has ${session.outputNames.join(', ')}`);
  return info;
}

export async function releaseAll(sessions: Array<Session | undefined>): Promise<void> {
  await Promise.all(sessions.map((s) => s?.release().catch(() => {})));
}
