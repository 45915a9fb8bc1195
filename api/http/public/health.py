"""Health: live (the process answers) and ready (its database, and Redis when configured, answer)."""
from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import DatabaseDep, SettingsDep
from api.errors import problem_response
from kit.db import RETRY_AFTER_SECONDS, database_unavailable_cause

router = APIRouter(tags=["health"])
# A dependency that does not answer within this long counts as down (a cut network hangs rather than refuses).
CHECK_TIMEOUT_SECONDS = 5.0


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up and serving; no dependency is asked (restart it only when this fails)."""
    return {"status": "ok"}


async def _check_database(database: DatabaseDep) -> str | None:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS), database.sessions() as session:
            await session.execute(text("SELECT 1"))
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # noqa: BLE001 - every failure is reported as the dependency's state
        return database_unavailable_cause(exc, from_database=True) or f"{type(exc).__name__}: {exc}"[:300]
    return None


async def _check_redis(url: str) -> str | None:
    from redis.asyncio import Redis

    client = Redis.from_url(url, socket_connect_timeout=CHECK_TIMEOUT_SECONDS, socket_timeout=CHECK_TIMEOUT_SECONDS)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await client.ping()
    except TimeoutError:
        return f"no answer within {CHECK_TIMEOUT_SECONDS:g} s"
    except Exception as exc:  # noqa: BLE001 - every failure is reported as the dependency's state
        return f"{type(exc).__name__}: {exc}"[:300]
    finally:
        await client.aclose()
    return None


@router.get("/health/ready", responses={503: {"description": "a dependency is down (problem+json)"}})
async def ready(request: Request, database: DatabaseDep, settings: SettingsDep) -> JSONResponse:
    """The process can serve: the database answers, and Redis when one is configured. 503 names what failed."""
    failures: dict[str, str] = {}
    database_error = await _check_database(database)
    if database_error is not None:
        failures["database"] = database_error
    if settings.redis.url:
        redis_error = await _check_redis(settings.redis.url)
        if redis_error is not None:
            failures["redis"] = redis_error
    checks = {"database": failures.get("database", "ok")}
    if settings.redis.url:
        checks["redis"] = failures.get("redis", "ok")
    if not failures:
        return JSONResponse({"status": "ok", "checks": checks})
    first = next(iter(failures))
    # Names the dependency and the cause, never its address: this route answers anyone.
    detail = "; ".join(f"{name}: {reason}" for name, reason in failures.items())
    return problem_response(503, f"{first}_unavailable", "Not ready", detail, request.url.path,
                            checks=checks, retry_after=RETRY_AFTER_SECONDS)


@router.get("/health", responses={503: {"description": "a dependency is down (problem+json)"}})
async def health(request: Request, database: DatabaseDep, settings: SettingsDep) -> JSONResponse:
    """Same as /health/ready (kept for existing probes)."""
    return await ready(request, database, settings)
