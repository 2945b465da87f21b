"""Baseline (b) on PostgreSQL: the hot paths with no platform around them.

FastAPI, a JWT verified with PyJWT, the same task get / list / insert SQL as
keel (list with project and assignee names; insert with its outbox row, in one
transaction) on a raw asyncpg pool, and orjson. Configured by BENCH_DSN
(a postgresql:// URL) and BENCH_SECRET (keel's secret key).
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import jwt
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

DSN = os.environ["BENCH_DSN"]
SECRET = os.environ["BENCH_SECRET"]
_pool: asyncpg.Pool | None = None


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    global _pool
    _pool = await asyncpg.create_pool(DSN, min_size=10, max_size=15)
    yield
    await _pool.close()


app = FastAPI(
    lifespan=lifespan, telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
)


def _pool_() -> asyncpg.Pool:
    assert _pool is not None
    return _pool


def _user(request: Request) -> str:
    token = request.headers["authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="keel-api", issuer="keel")
    return str(claims["sub"])


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data, default=str), status_code=status, media_type="application/json")


_COLUMNS = (
    "t.id, t.org_id, t.title, t.description, t.status, t.priority, t.project_id, t.assignee_id, t.due_at, "
    "t.labels, t.created_by_id, t.created_at, t.updated_at, t.version"
)


@app.get("/api/v1/orgs/{org_id}/tasks/{task_id}")
async def get_task(org_id: uuid.UUID, task_id: uuid.UUID, request: Request) -> Response:
    _user(request)
    row = await _pool_().fetchrow(
        f"SELECT {_COLUMNS}, p.name AS project_name FROM tasks t LEFT JOIN projects p ON p.id = t.project_id "
        "WHERE t.id = $1 AND t.org_id = $2 AND t.deleted_at IS NULL",
        task_id,
        org_id,
    )
    return _json(dict(row)) if row else _json({"status": 404}, 404)


_LIST = (
    f"SELECT {_COLUMNS}, p.name AS project_name, u.name AS assignee_name FROM tasks t "
    "LEFT JOIN projects p ON p.id = t.project_id LEFT JOIN users u ON u.id = t.assignee_id "
    "WHERE t.org_id = $1 AND t.deleted_at IS NULL %s ORDER BY t.created_at DESC, t.id DESC LIMIT $2"
)
_FIRST_PAGE, _LATER_PAGE = _LIST % "", _LIST % "AND (t.created_at, t.id) < ($3, $4)"


@app.get("/api/v1/orgs/{org_id}/tasks")
async def list_tasks(org_id: uuid.UUID, request: Request, limit: int = 50, cursor: str | None = None) -> Response:
    _user(request)
    if cursor:
        created_at, task_id = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        after = (datetime.fromisoformat(created_at), uuid.UUID(task_id))
        rows = await _pool_().fetch(_LATER_PAGE, org_id, limit + 1, *after)
    else:
        rows = await _pool_().fetch(_FIRST_PAGE, org_id, limit + 1)
    items = [dict(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = orjson.dumps([items[-1]["created_at"], items[-1]["id"]], default=str)
        next_cursor = base64.urlsafe_b64encode(last).rstrip(b"=").decode()
    return _json({"items": items, "next_cursor": next_cursor})


@app.post("/api/v1/orgs/{org_id}/tasks", status_code=201)
async def create_task(org_id: uuid.UUID, request: Request) -> Response:
    user = uuid.UUID(_user(request))
    body = orjson.loads(await request.body())
    moment = datetime.now(UTC)
    task_id, event_id = uuid.uuid4(), uuid.uuid4()
    async with _pool_().acquire() as connection, connection.transaction():
        await connection.execute(
            "INSERT INTO tasks (id, org_id, title, description, status, priority, labels, version, created_by_id, "
            "created_at, updated_at) VALUES ($1, $2, $3, '', 'todo', 0, '[]', 1, $4, $5, $5)",
            task_id,
            org_id,
            body["title"],
            user,
            moment,
        )
        await connection.execute(
            "INSERT INTO outbox_events (id, org_id, event_type, payload, created_at, available_at, attempts) "
            "VALUES ($1, $2, 'task.created', $3, $4, $4, 0)",
            event_id,
            org_id,
            orjson.dumps({"id": str(task_id)}).decode(),
            moment,
        )
    return _json({"id": str(task_id), "title": body["title"]}, 201)
