// Errors as OpenAI-compatible clients expect them: an HTTP status and
// `{"error": {"message", "type", "param", "code"}}`. Every refusal the server makes is one of these;
// an engine error is mapped by its stable `code`, anything else is a 500 with a one-line message.

import { EngineError } from '../core';

export type ApiErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'server_error';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType = 'invalid_request_error',
    /** stable, machine-readable */
    readonly code: string | null = null,
    /** the request field at fault, as a dotted path (`messages.0.content.1.image_url.url`) */
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = 'invalid_value') =>
  new ApiError(400, message, 'invalid_request_error', code, param);

/** Any thrown value -> an ApiError (engine errors about the input are the client's fault: 4xx). */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  if (err instanceof EngineError) {
    const line = err.message.split('\n')[0];
    if (err.code === 'IMAGE_DECODE') return new ApiError(400, line, 'invalid_request_error', 'invalid_image');
    if (err.code === 'IMAGE_TOO_LARGE') return new ApiError(413, line, 'invalid_request_error', 'image_too_large');
    if (err.code === 'ABORTED') return new ApiError(499, line, 'invalid_request_error', 'cancelled');
    return new ApiError(500, line, 'server_error', err.code.toLowerCase());
  }
  const message = err instanceof Error ? err.message : String(err);
  return new ApiError(500, message.split('\n')[0], 'server_error', 'internal_error');
}

export function errorBody(err: ApiError): string {
  return JSON.stringify({ error: { message: err.message, type: err.type, param: err.param, code: err.code } });
}
