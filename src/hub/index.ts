// The Hugging Face Hub side of models: the catalog (models/catalog.json: what we know how to run and
// the per-model facts a folder cannot say), downloads (Range resume, checksums, atomic rename, lock
// file) and model location (a setting -> a folder, what is missing, sizes). Depends on core only;
// never vscode, never the engine (a host that only downloads must not load onnxruntime).

export { CatalogError, filesFor, findEntry, loadCatalog, parseCatalog, type Catalog, type CatalogEntry, type CatalogFile, type CatalogVariant, type ConversionDtype, type ConversionEntry } from './catalog';
export { LOCK_FILE, downloadModel, readLock, type DownloadLock, type DownloadOptions, type DownloadProgress, type LockedFile, type VerifiedBy } from './download';
export * from './modelLocation';
