// OpenAI-style error objects: every failed request is answered with
// {"error": {"message", "type", "param", "code"}} and a status the official clients map to their error classes.

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'server_error'
  | 'timeout_error'
  | 'exceed_context_size_error';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly type: ApiErrorType,
    readonly code: string | null = null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): { error: { message: string; type: ApiErrorType; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code = 'invalid_request'): ApiError =>
  new ApiError(400, message, 'invalid_request_error', code, param);

export const notFound = (message: string, code = 'not_found', param: string | null = null): ApiError =>
  new ApiError(404, message, 'not_found_error', code, param);

/** Turns anything thrown inside a handler into an ApiError; unknown errors become a 500 without internals. */
export function toApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string; validation?: unknown; validationContext?: string };
  if (e?.validation !== undefined) {
    return badRequest(`Invalid request: ${e.message ?? 'body does not match the schema'}`, null, 'invalid_request');
  }
  if (e?.statusCode === 413 || e?.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    return new ApiError(413, `Request body is too large: ${e.message ?? ''}. Send a smaller request or start the server with a larger --body-limit.`, 'invalid_request_error', 'request_too_large');
  }
  if (e?.statusCode === 415 || e?.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    return badRequest(`Unsupported content type: ${e.message ?? ''}. Send JSON with Content-Type: application/json.`, null, 'invalid_content_type');
  }
  if (typeof e?.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return badRequest(`Malformed request: ${e.message ?? 'could not parse the body'}`, null, e.code ?? 'invalid_request');
  }
  return new ApiError(500, 'Internal server error; the request was not completed. See the server log.', 'server_error', 'internal_error');
}
