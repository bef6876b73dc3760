// Safe reading of workspace files, shared by everyone who reads one (the engine's preprocessing, the
// caption runner's folder walk and explicit paths, the CLI): regular files only, symbolic links
// resolved and kept inside the folder the user chose, bounded reads, FIFOs and devices refused
// without being opened. Node's fs only: never vscode, never the engine (the host loads this file).

export { checkRegularFile, isInside, kindOf, readRegularFile, type CheckedFile, type SafeFileOptions } from './safeFile';
