// Bounding boxes, from the model's text to the user's pixels and back: parsing every box frame
// (boxes.ts), mapping through the engine's preprocessing geometry, referring prompts, the chat glue
// that turns an answer into overlay boxes (answerBoxes.ts) and the configured model's grounding spec
// (modelGrounding.ts). Depends on core and the webview protocol's types; never vscode, the hub or
// the engine.

export * from './boxes';
export * from './answerBoxes';
export * from './modelGrounding';
