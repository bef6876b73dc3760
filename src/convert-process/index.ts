// The conversion as a child process: runs `llava convert --progress json` (dist/cli.js) with VS Code's
// Node, parses its progress lines (with ETA) and its one-line error, and kills it on cancel. The
// extension host imports this, never src/convert itself, so the converter never loads in the host.
// Depends on core only: never vscode, never convert (the shapes of the progress lines live here and
// the CLI writes them), never the engine.

export { ConvertProcessError, convertArgs, describeConvertFailure, runConvert, type RunConvertOptions } from './runner';
export {
  LineSplitter, estimateEta, formatEta, formatProgressLine, parseCliError, parseProgressLine,
  type ConvertDoneLine, type ConvertOutputLine, type ConvertProgressLine,
} from './progress';
