"""Baseline (b): what keel's hot paths cost with no platform around them.

FastAPI, a JWT verified with PyJWT, the same task get / list / insert SQL as
keel (list with project and assignee names; insert with its outbox row, in one
transaction) on the raw sqlite3 driver in a thread, and orjson. Configured by
BENCH_DB (SQLite file) and BENCH_SECRET (keel's secret key).
"""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import jwt
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response

DB = os.environ["BENCH_DB"]
SECRET = os.environ["BENCH_SECRET"]
_local = threading.local()
app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False})


def _connection() -> sqlite3.Connection:
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = sqlite3.connect(DB, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA busy_timeout=5000")
        connection.execute("PRAGMA synchronous=NORMAL")
        _local.connection = connection
    return connection


def _user(request: Request) -> str:
    token = request.headers["authorization"].removeprefix("Bearer ")
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], audience="keel-api", issuer="keel")
    return str(claims["sub"])


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


_COLUMNS = (
    "t.id, t.title, t.description, t.status, t.priority, t.project_id, t.assignee_id, t.due_at, t.labels, "
    "t.created_at, t.updated_at, t.version"
)


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    return dict(
        zip(
            [
                "id",
                "title",
                "description",
                "status",
                "priority",
                "project_id",
                "assignee_id",
                "due_at",
                "labels",
                "created_at",
                "updated_at",
                "version",
                "project_name",
                "assignee_name",
            ],
            row,
            strict=False,
        )
    )


@app.get("/api/v1/orgs/{org_id}/tasks/{task_id}")
async def get_task(org_id: str, task_id: str, request: Request) -> Response:
    _user(request)

    def query() -> Any:
        return (
            _connection()
            .execute(
                f"SELECT {_COLUMNS} FROM tasks t WHERE t.id = ? AND t.org_id = ? AND t.deleted_at IS NULL",
                (uuid.UUID(task_id).hex, uuid.UUID(org_id).hex),
            )
            .fetchone()
        )

    row = await asyncio.to_thread(query)
    return _json(_row(row)) if row else _json({"status": 404}, 404)


_LIST = (
    f"SELECT {_COLUMNS}, p.name, u.name FROM tasks t "
    "LEFT JOIN projects p ON p.id = t.project_id LEFT JOIN users u ON u.id = t.assignee_id "
    "WHERE t.org_id = ? AND t.deleted_at IS NULL %s ORDER BY t.created_at DESC, t.id DESC LIMIT ?"
)
_FIRST_PAGE, _LATER_PAGE = _LIST % "", _LIST % "AND (t.created_at, t.id) < (?, ?)"


@app.get("/api/v1/orgs/{org_id}/tasks")
async def list_tasks(org_id: str, request: Request, limit: int = 50, cursor: str | None = None) -> Response:
    _user(request)
    org = uuid.UUID(org_id).hex
    # The cursor holds the last row's stored created_at text and id hex.
    after = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))) if cursor else None

    def query() -> Any:
        if after is None:
            return _connection().execute(_FIRST_PAGE, (org, limit + 1)).fetchall()
        return _connection().execute(_LATER_PAGE, (org, *after, limit + 1)).fetchall()

    rows = await asyncio.to_thread(query)
    items = [_row(r) for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = orjson.dumps([items[-1]["created_at"], items[-1]["id"]])
        next_cursor = base64.urlsafe_b64encode(last).rstrip(b"=").decode()
    return _json({"items": items, "next_cursor": next_cursor})


@app.post("/api/v1/orgs/{org_id}/tasks", status_code=201)
async def create_task(org_id: str, request: Request) -> Response:
    user = _user(request)
    body = orjson.loads(await request.body())
    now = datetime.now(UTC).isoformat(sep=" ")
    task_id, event_id = uuid.uuid4().hex, uuid.uuid4().hex

    def insert() -> None:
        connection = _connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            connection.execute(
                "INSERT INTO tasks (id, org_id, title, description, status, priority, labels, version, created_by_id, "
                "created_at, updated_at) VALUES (?, ?, ?, '', 'todo', 0, '[]', 1, ?, ?, ?)",
                (task_id, uuid.UUID(org_id).hex, body["title"], uuid.UUID(user).hex, now, now),
            )
            connection.execute(
                "INSERT INTO outbox_events (id, org_id, event_type, payload, created_at, available_at, attempts) "
                "VALUES (?, ?, 'task.created', ?, ?, ?, 0)",
                (event_id, uuid.UUID(org_id).hex, orjson.dumps({"id": task_id}).decode(), now, now),
            )
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise

    await asyncio.to_thread(insert)
    return _json({"id": task_id, "title": body["title"]}, 201)
