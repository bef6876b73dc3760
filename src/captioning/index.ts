// Batch captioning jobs: presets and placeholders, the job runner (resume, per-image errors,
// progress), outputs (atomic sidecars, fsync'd JSONL/CSV manifests), the bounded prefetch queue, and
// the backend that runs jobs on an in-process model. Depends on core and the engine's types; never
// vscode. The host and the CLI reach it only through this file.

export {
  IMAGE_EXTENSIONS,
  PRESET_PROMPTS,
  checkSidecarExt,
  describeIgnored,
  expandImagePaths,
  explicitRoot,
  scanImagePaths,
  fillPrompt,
  finalCaption,
  promptFor,
  runCaptionJob,
  type CaptionBackend,
  type CaptionItem,
  type CaptionJobOptions,
  type CaptionOutput,
  type CaptionPreset,
  type CaptionProgress,
  type CaptionResult,
  type CaptionSampling,
  type CaptionSummary,
  type ExistingPolicy,
  type ImageOutcome,
  type ImageScan,
  type SkippedFile,
} from './jobs';
export { CSV_COLUMNS, Manifest, csvField, csvLine, parseCsv, readCsvCell, readSidecar, removeStaleTempFiles, sidecarPath, writeFileAtomic, type CaptionRecord, type ManifestFormat } from './outputs';
export { CaptionQueue } from './queue';
export { modelCaptionBackend } from './modelBackend';
