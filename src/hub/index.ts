// The Hugging Face Hub side of models: the catalog (models/catalog.json: per-model facts a folder
// cannot say, and pins), the repository listing and the per-part choice made from it (plan), the
// download (Range resume, checksums from the Hub host only, https-only redirects, atomic rename,
// folder lock, disk-space check) and model location (a setting -> a folder, what is missing, sizes).
// Depends on core only; never vscode, never the engine (a host that only downloads must not load
// onnxruntime).

export { CatalogError, findEntry, loadCatalog, parseCatalog, type Catalog, type CatalogEntry, type CatalogFile, type ConversionDtype, type ConversionEntry } from './catalog';
export { CHECKPOINT_INDEX, checkpointFolderId, conversionDtype, conversionOffer, planCheckpointDownload, type ConversionOffer } from './checkpointPlan';
export { downloadPlan, type DownloadOptions, type DownloadProgress } from './download';
export { MANIFEST_FILE, readManifest, type DownloadManifest, type LockedFile, type VerifiedBy } from './manifest';
export { diskSpaceProblem } from './diskSpace';
export { LOCK_FILE, acquireFolderLock, type LockHolder } from './folderLock';
export { DEFAULT_ENDPOINT, endpointOf, refusedRedirect, type HubRequestOptions } from './http';
export { listRepo, parseListing, planFromHub, type ListedFile, type RepoListing } from './listing';
export { MODEL_FILES, REQUIRED_FILES, downloadOffer, folderIdForRepo, formatBytes, planDownload, type DownloadOffer, type DownloadPlan, type PlannedFile } from './plan';
export * from './modelLocation';
