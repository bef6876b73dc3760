// What the user is told when something stands between a question and an answer, in words a user can
// act on, with the buttons that fix it: no model yet, a failed download, a provider that cannot load,
// an image that cannot be read. Typed errors (codes from src/core/errors.ts, Node's errno codes on a
// download's cause) become sentences here, once, for the chat, the notifications and the status bar.
// No vscode import: plain functions, unit-tested in test/unit/guidance.test.ts. The technical detail
// stays in the log; the sentence says what happened and what to do next.

import * as fs from 'node:fs';
import type { MessageAction } from '../protocol';

/** The actions the chat's buttons and the notifications offer; the host maps each id to what it does. */
export type GuidanceActionId =
  | 'download'
  | 'localFolder'
  | 'builtin'
  | 'proxySettings'
  | 'switchToAuto'
  | 'providerSetting'
  | 'cudaHelp'
  | 'selectModel'
  | 'modelsFolderSetting'
  | 'showLogs'
  | 'askDownscaled';

export interface GuidanceAction extends MessageAction {
  id: GuidanceActionId;
}

export interface Guidance {
  /** Markdown (host-written, rendered sanitised): one or two sentences */
  text: string;
  actions: GuidanceAction[];
}

export const GUIDANCE_ACTION_IDS: readonly GuidanceActionId[] = [
  'download',
  'localFolder',
  'builtin',
  'proxySettings',
  'switchToAuto',
  'providerSetting',
  'cudaHelp',
  'selectModel',
  'modelsFolderSetting',
  'showLogs',
  'askDownscaled',
];

export function isGuidanceActionId(id: string): id is GuidanceActionId {
  return (GUIDANCE_ACTION_IDS as readonly string[]).includes(id);
}

/** The model a download would fetch, as the offer names it. */
export interface ModelOffer {
  label: string;
  /** already formatted, e.g. "1.1 GB"; undefined when the catalog does not know it */
  size?: string;
  licence?: string;
}

/** "nanoLLaVA 1.5 (1B, laptop CPU)" -> "nanoLLaVA 1.5": buttons stay short enough to read whole. */
export function shortModelName(label: string): string {
  return label.replace(/\s*\([^)]*\)\s*$/, '') || label;
}

export interface NoModelSituation {
  offer: ModelOffer;
  /** the setting names a catalog model not (fully) on disk, or something that cannot be used at all */
  problem?: string;
  /** the model shipped inside the extension, when this package has one: its label and what it can do */
  builtin?: { label: string; description: string };
}

const LOCAL_FOLDER: GuidanceAction = { id: 'localFolder', label: 'Use Local Folder…' };

/**
 * The inline choice for the first question without a model. Buttons, in this order: Download (size),
 * Use Local Folder…, and Use <the built-in model's label> when the extension ships one. Download stays the
 * recommended choice: the built-in model answers at once but only about pictures of coloured shapes, and the
 * question that brought the user here is about their own image.
 */
export function noModelGuidance(s: NoModelSituation): Guidance {
  const { offer } = s;
  const facts = [offer.size, offer.licence ? `licence ${offer.licence}` : undefined].filter(Boolean).join(', ');
  const builtin = s.builtin ? ` Or try the ${s.builtin.label} at once: ${s.builtin.description}.` : '';
  const text = s.problem
    ? `**The model in the \`llava.model\` setting cannot be used:** ${s.problem}\n\nDownload ${offer.label}${facts ? ` (${facts})` : ''} or choose a model folder you already have.${builtin}`
    : `**A model is needed to answer.** ${offer.label} is not downloaded yet: download it once (${facts ? `${facts}; ` : ''}afterwards it works offline), or use a model folder you already have.${builtin}`;
  const name = shortModelName(offer.label);
  const actions: GuidanceAction[] = [
    { id: 'download', label: offer.size ? `Download ${name} (${offer.size})` : `Download ${name}`, primary: true },
    LOCAL_FOLDER,
  ];
  if (s.builtin) actions.push({ id: 'builtin', label: `Use ${s.builtin.label}` });
  return { text, actions };
}

/** Node's errno code of an error or of any error in its `cause` chain. */
export function errnoOf(err: unknown): string | undefined {
  for (let e = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code) && !ENGINE_CODES.has(code)) return code;
  }
  return undefined;
}

/** The stable code of a typed error (src/core/errors.ts, or the engine-process boundary's own). */
export function errorCodeOf(err: unknown): string | undefined {
  const code = err && typeof err === 'object' ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

const ENGINE_CODES = new Set(['ENGINE_EXITED']);

/** Transport failures that mean "the Hub cannot be reached from here". */
const UNREACHABLE = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'ECONNABORTED',
  'EPROTO',
  'CERT_HAS_EXPIRED',
]);

/** Why a download failed, in words, with what to do next. */
export function downloadFailureGuidance(err: unknown, modelLabel: string): Guidance {
  const code = errorCodeOf(err);
  const errno = errnoOf(err);
  const message = err instanceof Error ? err.message : String(err);
  const http = /\[HTTP (\d{3})/.exec(message)?.[1];
  const retry: GuidanceAction = { id: 'download', label: 'Retry', primary: true };
  if (code === 'CHECKSUM') {
    return {
      text: `**The download of ${modelLabel} was damaged** (a file did not match its checksum and was deleted). Retrying fetches it again.`,
      actions: [retry, LOCAL_FOLDER],
    };
  }
  if (errno === 'ENOSPC') {
    return {
      text: `**Not enough disk space for ${modelLabel}.** Free some space, or choose another models folder.`,
      actions: [retry, { id: 'modelsFolderSetting', label: 'Choose Models Folder' }],
    };
  }
  if (errno === 'EACCES' || errno === 'EPERM' || errno === 'EROFS') {
    return {
      text: `**The models folder cannot be written to.** Choose a folder you can write to for downloaded models.`,
      actions: [{ id: 'modelsFolderSetting', label: 'Choose Models Folder', primary: true }, LOCAL_FOLDER],
    };
  }
  if (http === '401' || http === '403') {
    return {
      text: `**The Hugging Face Hub refused access to ${modelLabel}** (a gated or private model). Download it in a browser after accepting its licence, then use its folder.`,
      actions: [LOCAL_FOLDER, { id: 'selectModel', label: 'Choose Another Model' }],
    };
  }
  if (http === '404') {
    return {
      text: `**${modelLabel} is no longer on the Hugging Face Hub** at the version this extension knows. Choose another model, or use a folder you have.`,
      actions: [{ id: 'selectModel', label: 'Choose Another Model', primary: true }, LOCAL_FOLDER],
    };
  }
  if (http && http.startsWith('5')) {
    return {
      text: `**The Hugging Face Hub is not answering properly right now** (HTTP ${http}). Try again in a few minutes.`,
      actions: [retry, LOCAL_FOLDER],
    };
  }
  if ((errno && UNREACHABLE.has(errno)) || /no answer for \d+ s|socket hang up|tunneling socket|proxy/i.test(message)) {
    return {
      text: `**Can't reach the Hugging Face Hub: offline or behind a proxy?** ${modelLabel} could not be downloaded. Check the connection or VS Code's proxy setting, or use a model folder you already have.`,
      actions: [retry, { id: 'proxySettings', label: 'Proxy Settings' }, LOCAL_FOLDER],
    };
  }
  return {
    text: `**The download of ${modelLabel} failed.** ${firstSentence(message)}`,
    actions: [retry, LOCAL_FOLDER, { id: 'showLogs', label: 'Show Logs' }],
  };
}

export interface AskFailure extends Guidance {
  /** set when the model itself could not be loaded: the status bar shows it until settings change */
  modelProblem?: string;
}

/**
 * Why a question got no answer, for the failed message in the chat. Image problems belong to that
 * question only (the engine is fine); provider and model problems also mark the model as not loaded.
 */
export function askFailureGuidance(
  err: unknown,
  providerChoice: string,
  nvidiaGpu = true,
  opts: { offerDownscale?: boolean } = {},
): AskFailure {
  const code = errorCodeOf(err);
  const message = err instanceof Error ? err.message : String(err);
  switch (code) {
    case 'PROVIDER': {
      const name = PROVIDER_WORDS[providerChoice] ?? providerChoice;
      const actions: GuidanceAction[] = [
        { id: 'switchToAuto', label: 'Switch to Auto', primary: true },
        { id: 'providerSetting', label: 'Open Setting' },
      ];
      if (providerChoice === 'cuda') actions.push({ id: 'cudaHelp', label: 'How to Enable CUDA' });
      return {
        text: `**${name} cannot be used here**, and \`llava.executionProvider\` asks for it explicitly. ${providerCuda(providerChoice) && !nvidiaGpu ? 'No NVIDIA GPU was found on this machine.' : providerReasonInWords(message)} Switch to \`auto\` to answer on the CPU (or the GPU when it works).`,
        actions,
        modelProblem: `${PROVIDER_SHORT[providerChoice] ?? providerChoice} unavailable`,
      };
    }
    case 'MODEL_FOLDER':
    case 'MODEL_LOAD':
      return {
        text: `**The model could not be loaded.** ${message}`,
        actions: [{ id: 'selectModel', label: 'Choose Another Model', primary: true }, { id: 'showLogs', label: 'Show Logs' }],
        modelProblem: 'model failed to load',
      };
    case 'IMAGE_DECODE': {
      const { name } = splitSource(message);
      return {
        text: `**${name ? `${name} cannot be read as an image`: 'This image cannot be read'}**: the file is damaged or not in a supported format. Try another file, or save it as PNG or JPEG.`,
        actions: [],
      };
    }
    case 'IMAGE_TOO_LARGE':
      // the chat shows the image and can ask again about a smaller copy the engine makes (the file stays as it is)
      if (opts.offerDownscale && downscaleHelps(message)) {
        return {
          text: imageTooLargeInWords(message).replace(/ Scale it down and ask again\.$/, ' The model can look at a smaller copy instead; the file is not changed.'),
          actions: [ASK_DOWNSCALED],
        };
      }
      return { text: imageTooLargeInWords(message), actions: [] };
    case 'ENGINE_EXITED':
      return {
        text: `**The engine stopped unexpectedly** (out of memory or a crash); it starts again with the next question.`,
        actions: [{ id: 'showLogs', label: 'Show Logs' }],
      };
    default:
      return { text: `**No answer:** ${message}`, actions: [{ id: 'showLogs', label: 'Show Logs' }] };
  }
}

const providerCuda = (p: string) => p === 'cuda';
const PROVIDER_SHORT: Record<string, string> = { cuda: 'CUDA', dml: 'DirectML', coreml: 'CoreML', webgpu: 'WebGPU', cpu: 'CPU' };
const PROVIDER_WORDS: Record<string, string> = { cuda: 'CUDA (NVIDIA GPU)', dml: 'DirectML (GPU)', coreml: 'CoreML', webgpu: 'WebGPU (GPU)', cpu: 'The CPU' };

/** The engine's reason for an unusable provider, minus file paths and install jargon. */
export function providerReasonInWords(message: string): string {
  if (/providers_cuda\.so is not installed|CUDA provider library/i.test(message)) {
    return 'Its GPU library (the CUDA provider of ONNX Runtime, with CUDA 12 and cuDNN 9) is not installed with this extension.';
  }
  if (/only on /i.test(message)) return 'It is not available on this operating system.';
  if (/Vulkan loader/i.test(message)) return 'WebGPU needs the Vulkan loader (package libvulkan1) and a Vulkan driver for the GPU.';
  if (/no GPU adapter/i.test(message)) return 'No GPU was found that WebGPU can use (it needs a Vulkan driver on Linux, Direct3D 12 on Windows).';
  if (/libcudart|libcublas|libcudnn|cuda/i.test(message)) return 'CUDA 12 or cuDNN 9 is missing or does not match the driver.';
  return '';
}

/**
 * Why the engine runs on the CPU on `auto`, for the status bar's tooltip and the log. CPU is a
 * normal state; this only says why a GPU was not used and whether anything can be done.
 */
export function cpuReasonInWords(fallbackReason: string, nvidiaGpu: boolean, runsOn = 'cpu'): string {
  const reasons = fallbackReason.split(';').map((r) => r.trim());
  const first = reasons[0] ?? '';
  const provider = /^(\w+):/.exec(first)?.[1];
  const webgpuToo = provider !== 'webgpu' && reasons.some((r) => r.startsWith('webgpu:'));
  let words = cpuReasonFor(provider, first, nvidiaGpu);
  if (webgpuToo) words = words.replace(/, so answers run on the CPU\.$/, '; WebGPU could not start either, so answers run on the CPU.');
  // a later GPU provider took over (on Linux, WebGPU after CUDA)
  if (runsOn !== 'cpu') words = words.replace(/so answers run on the CPU\.$/, `so answers run on ${PROVIDER_SHORT[runsOn] ?? runsOn} instead.`);
  return words;
}

function cpuReasonFor(provider: string | undefined, first: string, nvidiaGpu: boolean): string {
  if (provider === 'webgpu') return 'WebGPU could not start on this GPU (a Vulkan driver is needed), so answers run on the CPU.';
  if (provider === 'cuda') {
    if (!nvidiaGpu) return 'No NVIDIA GPU was found on this machine, so answers run on the CPU.';
    if (/not installed/i.test(first)) {
      return 'An NVIDIA GPU is present, but GPU support (the CUDA provider of ONNX Runtime) is not installed with this extension, so answers run on the CPU.';
    }
    return 'An NVIDIA GPU is present, but CUDA could not start (CUDA 12 and cuDNN 9 are needed), so answers run on the CPU.';
  }
  if (provider === 'dml') return 'DirectML could not start on this GPU, so answers run on the CPU.';
  if (provider === 'coreml') return 'CoreML could not load this model, so answers run on the CPU.';
  return 'The GPU could not be used, so answers run on the CPU.';
}

/** Whether an NVIDIA driver is loaded (Linux: /proc/driver/nvidia; elsewhere: unknown, assume yes). */
export function nvidiaGpuPresent(platform: NodeJS.Platform = process.platform, exists: (p: string) => boolean = fs.existsSync): boolean {
  if (platform !== 'linux') return true;
  return exists('/proc/driver/nvidia/version') || exists('/dev/nvidia0');
}

/** "name.png: what" -> its parts (the engine prefixes image errors with the image's name). */
function splitSource(message: string): { name?: string; what: string } {
  const i = message.indexOf(': ');
  return i > 0 && i < 200 ? { name: message.slice(0, i), what: message.slice(i + 2) } : { what: message };
}

export const ASK_DOWNSCALED: GuidanceAction = { id: 'askDownscaled', label: 'Ask About a Downscaled Copy', primary: true };

/**
 * Whether a copy the engine shrinks (ImageInput `downscale`) would get past this limit: the pixel
 * count and the longest side, yes; the file size, the aspect ratio (a copy keeps it) and the hard
 * ceiling that holds even for copies, no.
 */
export function downscaleHelps(message: string): boolean {
  if (/even for a downscaled copy/.test(message)) return false;
  return /\d+x\d+(?: \(\d+ pixels\))? exceeds the limit of \d+ pixels|\d+x\d+: a side longer than \d+ pixels/.test(message);
}

/** The image (by name) an engine image error is about: the text before the first ": ". */
export function imageNameOf(message: string): string | undefined {
  return splitSource(message).name;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const megapixels = (n: number) => `${Number((n / 1e6).toFixed(n < 1e7 ? 1 : 0)).toLocaleString('en-US')} MP`;
const megabytes = (n: number) => `${Number((n / 1024 / 1024).toFixed(n < 10 * 1024 * 1024 ? 1 : 0))} MB`;

/**
 * The engine's size limits in user words with formatted numbers: "9,000 × 8,000 px (72 MP) is over
 * the 64 MP limit", "80 MB is over the 64 MB limit".
 */
export function imageTooLargeInWords(message: string): string {
  const { name, what } = splitSource(message);
  const who = name ?? 'This image';
  const px = /(\d+)x(\d+)(?: \(\d+ pixels\))? exceeds the limit of (\d+) pixels/.exec(what);
  if (px) {
    const [w, h, max] = [Number(px[1]), Number(px[2]), Number(px[3])];
    return `**${who} is too large:** ${int(w)} × ${int(h)} px (${megapixels(w * h)}) is over the ${megapixels(max)} limit. Scale it down and ask again.`;
  }
  const side = /^(\d+)x(\d+): a side longer than (\d+) pixels/.exec(what);
  if (side) {
    const [w, h, max] = [Number(side[1]), Number(side[2]), Number(side[3])];
    return `**${who} is too large:** ${int(w)} × ${int(h)} px has a side over the ${int(max)} px limit. Scale it down and ask again.`;
  }
  const bytes = /(\d+) bytes(?:,)? (?:exceeds|over) the limit of (\d+) bytes/.exec(what);
  if (bytes) {
    return `**${who} is too large:** ${megabytes(Number(bytes[1]))} is over the ${megabytes(Number(bytes[2]))} limit. Save it smaller (e.g. as JPEG) and ask again.`;
  }
  // the remote backend's own checks: "larger than N bytes", "N bytes is over the M byte limit"
  const remote = /^(?:(\d+) bytes is over the (\d+) byte limit|larger than (\d+) bytes)$/.exec(what);
  if (remote) {
    const max = megabytes(Number(remote[2] ?? remote[3]));
    return `**${who} is too large:** ${remote[1] ? `${megabytes(Number(remote[1]))} is over the ${max} limit` : `it is over the ${max} limit`}. Save it smaller (e.g. as JPEG) and ask again.`;
  }
  return `**${who} is too large:** ${what}`;
}

function firstSentence(message: string): string {
  const s = message.replace(/\s+/g, ' ').trim();
  return s.length > 240 ? `${s.slice(0, 239)}…` : s;
}
