"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from atende.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep) -> JSONResponse:
    checks: dict[str, Any] = {}
    try:
        services.store.ping()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {type(exc).__name__}"
    checks["index_chunks"] = len(services.index.lexical)
    checks["model"] = "ok" if "model" in services.warmed else "not loaded"
    ready = checks["database"] == "ok" and checks["index_chunks"] > 0 and checks["model"] == "ok"
    return JSONResponse({"ready": ready, "checks": checks}, 200 if ready else 503)
