"""Baseline (a2): a bare FastAPI app returning the same constant JSON — the framework's ceiling."""

from __future__ import annotations

from typing import Literal

from fastapi import FastAPI
from pydantic import BaseModel


class Liveness(BaseModel):
    status: Literal["ok"] = "ok"


app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False})


@app.get("/health/live", response_model=Liveness)
async def live() -> Liveness:
    return Liveness()
