// One error family. Services throw AppError subclasses; one mapper (problemResponse) turns
// any error into application/problem+json. Nothing from the driver, SQL or a stack trace
// ever reaches a client: unknown errors become a generic 500.

export type FieldError = { field: string; message: string; code: string };

export class AppError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    readonly detail: string,
    readonly fields?: FieldError[],
    readonly headers?: Record<string, string>,
    readonly extra?: Record<string, unknown>,
  ) {
    super(detail);
    this.name = "AppError";
  }
}

export class ValidationError extends AppError {
  constructor(fields: FieldError[], detail = "The request is invalid.") {
    super("VALIDATION_ERROR", 400, detail, fields);
  }
}
export const invalidField = (field: string, message: string, code = "invalid") =>
  new ValidationError([{ field, message, code }], `${field}: ${message}`);

export class NotFoundError extends AppError {
  constructor(
    code: "NOT_FOUND" | "USER_NOT_FOUND" | "WALLET_NOT_FOUND" | "TRANSACTION_NOT_FOUND",
    detail: string,
  ) {
    super(code, 404, detail);
  }
}
export class ConflictError extends AppError {
  constructor(
    code: string,
    detail: string,
    extra?: Record<string, unknown>,
    headers?: Record<string, string>,
  ) {
    super(code, 409, detail, undefined, headers, extra);
  }
}
export class UnprocessableError extends AppError {
  constructor(code: string, detail: string, extra?: Record<string, unknown>) {
    super(code, 422, detail, undefined, undefined, extra);
  }
}
export class UnauthorizedError extends AppError {
  constructor(detail = "A valid bearer token is required.", errorDescription?: string) {
    super("UNAUTHORIZED", 401, detail, undefined, {
      "WWW-Authenticate": errorDescription
        ? `Bearer realm="paybridge", error="invalid_token", error_description="${errorDescription}"`
        : 'Bearer realm="paybridge"',
    });
  }
}
export class ForbiddenError extends AppError {
  constructor(detail = "You are not allowed to do this.") {
    super("FORBIDDEN", 403, detail);
  }
}
export class ServiceUnavailableError extends AppError {
  constructor(detail = "The service is temporarily unavailable. Retry later.", retryAfterSeconds = 1) {
    super("SERVICE_UNAVAILABLE", 503, detail, undefined, { "Retry-After": String(retryAfterSeconds) });
  }
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Payload Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

export const PROBLEM_TYPE_BASE = "https://paybridge.dev/problems/";

export type Problem = {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  code: string;
  request_id: string;
  errors?: FieldError[];
  [k: string]: unknown;
};

export function toProblem(err: AppError, instance: string, requestId: string): Problem {
  const p: Problem = {
    type: `${PROBLEM_TYPE_BASE}${err.code.toLowerCase().replaceAll("_", "-")}`,
    title: TITLES[err.status] ?? "Error",
    status: err.status,
    detail: err.detail,
    instance,
    code: err.code,
    request_id: requestId,
    ...err.extra,
  };
  if (err.fields) p.errors = err.fields;
  return p;
}

export const PROBLEM_CONTENT_TYPE = "application/problem+json";
