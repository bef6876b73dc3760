// Remote backends: an OpenAI-compatible HTTP client (vLLM, Ollama, llama.cpp's server, another
// machine's `llava serve`) with the small call shape the host uses for its local engine, the caption
// backend that sends a job's images concurrently, and what the host needs to know about an image
// without decoding it (type, size) to draw boxes. Imports core and captioning's types; never vscode,
// never the engine (the extension host loads this).

export { RemoteClient, type RemoteAnswer, type RemoteChatOptions, type RemoteClientOptions } from './client';
export { remoteCaptionBackend } from './captionBackend';
export { imageSize, sniffImageType, toDataUrl } from './images';
export { remoteGeometry } from './geometry';
