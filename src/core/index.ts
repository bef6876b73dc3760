// Plain data types and typed errors shared by every folder (engine, process boundary, hub,
// captioning, grounding, host, CLI). Imports nothing: everything here survives structured cloning
// across the process boundary, and every error carries a stable `code` that callers print instead of
// a class name (names are mangled in the minified build).

export * from './types';
export * from './errors';
export * from './variants';
