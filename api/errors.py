"""One place that turns every error into RFC 9457 problem+json."""
from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot import i18n
from kit.db import RETRY_AFTER_SECONDS, DatabaseUnavailable, database_unavailable_cause
from kit.errors import ShopTalkError

log = logging.getLogger(__name__)
PROBLEM_JSON = "application/problem+json"


def problem_response(status: int, code: str, title: str, detail: str, instance: str,
                     **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"type": f"https://shoptalk.dev/problems/{code}", "title": title,
                            "status": status, "detail": detail, "code": code, "instance": instance}
    body.update(extra)
    # A problem that says when to retry says it in the header too, where clients and proxies look for it.
    headers = {"Retry-After": str(int(extra["retry_after"]))} if "retry_after" in extra else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [{"loc": [str(p) for p in err.get("loc", ())], "msg": str(err.get("msg", "")),
             "type": str(err.get("type", ""))} for err in exc.errors()]


async def integrity_conflict(request: Request, exc: Exception) -> JSONResponse:
    """A unique or foreign-key constraint refused the write (two requests raced, or the row already exists):
    409 `already_exists`, also when it surfaces at the request's commit (api.deps.get_session)."""
    reason = str(getattr(exc, "orig", exc))
    log.info("integrity conflict on %s %s: %s", request.method, request.url.path, reason)
    if _is_unique_violation(exc, reason):
        return problem_response(409, "already_exists", "Already exists",
                                "Something with the same unique value already exists (or was just created by "
                                "another request); nothing was saved.", request.url.path)
    return problem_response(409, "integrity_conflict", "Conflict",
                            "This conflicts with related data (changed or removed by another request); nothing was "
                            "saved.", request.url.path)


def _is_unique_violation(exc: Exception, reason: str) -> bool:
    sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None) or getattr(
        getattr(getattr(exc, "orig", None), "__cause__", None), "sqlstate", None)
    return sqlstate == "23505" or "UNIQUE constraint failed" in reason or "duplicate key value" in reason


def reader_locale(request: Request) -> str:
    """The language of whoever reads the answer: the first of the request's Accept-Language we have a catalog for
    (the agent console's page and its API calls send the same header), else English."""
    for part in request.headers.get("accept-language", "").split(","):
        found = i18n.supported_locale(part.split(";")[0].strip())
        if found:
            return found
    return i18n.DEFAULT_LOCALE


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(IntegrityError, integrity_conflict)

    @app.exception_handler(ShopTalkError)
    async def _domain(request: Request, exc: ShopTalkError) -> JSONResponse:
        headers = {}
        if exc.status == 429 and "retry_after" in exc.extra:
            headers["Retry-After"] = str(int(exc.extra["retry_after"]))
        problem = exc.to_problem(request.url.path)
        if exc.message is not None:  # words with a catalog key: in the reader's language (the code stays)
            locale = reader_locale(request)
            problem["detail"] = i18n.render(locale, exc.message)
            headers.update({"Content-Language": locale, "Vary": "Accept-Language"})
        return JSONResponse(problem, status_code=exc.status, media_type=PROBLEM_JSON, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _validation_errors(exc)
        if any(e["type"] == "json_invalid" for e in errors):
            return problem_response(400, "malformed_json", "Malformed JSON",
                                    "The request body is not valid JSON.", request.url.path)
        return problem_response(422, "validation_error", "Invalid request",
                                "The request does not match the expected schema.", request.url.path,
                                errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large"}.get(
            exc.status_code, f"http_{exc.status_code}")
        return problem_response(exc.status_code, code, str(exc.detail), str(exc.detail), request.url.path)

    app.add_exception_handler(Exception, internal_error)
    _install_database_unavailable(app)


async def internal_error(request: Request, exc: Exception) -> JSONResponse:
    """Anything unexpected: logged with its traceback, answered 500 without one."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "internal_error", "Internal error",
                            "Something went wrong on our side; nothing was saved.", request.url.path)


def _install_database_unavailable(app: FastAPI) -> None:
    """503 database_unavailable with Retry-After for every route whose database cannot be reached; never 500."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        cause = database_unavailable_cause(exc)
        if cause is None:  # a database error that is not an outage stays an internal error
            return await internal_error(request, exc)
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, cause)
        detail = exc.detail if isinstance(exc, DatabaseUnavailable) else \
            f"The database cannot be reached now ({cause}); try again shortly."
        return problem_response(503, "database_unavailable", "Database unavailable", detail, request.url.path,
                                retry_after=RETRY_AFTER_SECONDS)

    for kind in (DatabaseUnavailable, DBAPIError, PoolTimeout, OSError):
        app.add_exception_handler(kind, _database)
