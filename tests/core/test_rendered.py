"""Columns read as the JSON they are rendered as (keel.core.rendered): the
same response bytes as the decoded values would give, whatever the value."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from keel.core.db import Database
from keel.core.outbox import OutboxEvent, emit
from keel.core.prepared import PreparedRead
from keel.core.rendered import RenderedTimestamp, rendered_json, rendered_timestamp
from keel.core.responses import render
from tests.fixtures.databases import database_settings

_BY_TYPE = (OutboxEvent.event_type == bindparam("event_type"),)
_DECODED = PreparedRead(select(OutboxEvent.created_at, OutboxEvent.payload).where(*_BY_TYPE).order_by(OutboxEvent.id))
_RENDERED = PreparedRead(
    select(rendered_timestamp(OutboxEvent.created_at), rendered_json(OutboxEvent.payload))
    .where(*_BY_TYPE)
    .order_by(OutboxEvent.id)
)

# Whole seconds (no fraction in JSON), fractions with trailing zeros (which
# PostgreSQL's text trims), one microsecond, and an instant given in another zone.
_MOMENTS = (
    datetime(2026, 3, 1, 14, 30, 5, tzinfo=UTC),
    datetime(2026, 3, 1, 14, 30, 5, 100000, tzinfo=UTC),
    datetime(2026, 3, 1, 14, 30, 5, 120000, tzinfo=UTC),
    datetime(2026, 3, 1, 14, 30, 5, 1, tzinfo=UTC),
    datetime(2026, 3, 1, 14, 30, 5, 742308, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
)
_PAYLOADS = (
    {"n": 1, "tags": ["a", "ü", "🚀"]},
    {"quote": 'say "hi"\\ back', "nested": {"list": [1, 2.5, None, True]}},
    {},
)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_settings(database_url))
    yield db
    await db.dispose()


async def _written(database: Database) -> str:
    event_type = f"rendered.{uuid.uuid4().hex[:8]}"
    async with database.session(write=True) as session:
        for number in range(len(_MOMENTS)):
            await emit(session, event_type, _PAYLOADS[number % len(_PAYLOADS)], org_id=uuid.uuid4())
        await session.flush()
        ids = (await session.execute(select(OutboxEvent.id).where(*_BY_TYPE), {"event_type": event_type})).scalars()
        for event_id, moment in zip(sorted(ids), _MOMENTS, strict=True):
            await session.execute(update(OutboxEvent).where(OutboxEvent.id == event_id).values(created_at=moment))
        await session.commit()
    return event_type


async def test_rendered_columns_give_the_bytes_their_decoded_values_give(database: Database) -> None:
    event_type = await _written(database)
    params = {"event_type": event_type}
    async with database.session(write=False) as session:
        decoded = await _DECODED.all(session, params)
        on_driver = await _RENDERED.all(session, params)
        through_sqlalchemy = (await session.execute(_RENDERED.statement, params)).all()
    assert len(decoded) == len(_MOMENTS)
    for rendered in (on_driver, through_sqlalchemy):
        assert [render(list(row)) for row in rendered] == [render(list(row)) for row in decoded]
    assert [render(row[0]) for row in on_driver] == [render(moment.astimezone(UTC)) for moment in _MOMENTS]
    # What code that computes with a read timestamp gets back from it.
    assert [_instant(row[0]) for row in on_driver] == list(_MOMENTS)
    assert all(isinstance(row[1], orjson.Fragment) for row in on_driver)


@pytest.mark.parametrize(
    ("dialect", "text", "moment"),
    [
        (postgresql.dialect(), "2026-12-02 02:23:32.742308+00", datetime(2026, 12, 2, 2, 23, 32, 742308)),
        (postgresql.dialect(), "2026-12-02 02:23:32.7423+00", datetime(2026, 12, 2, 2, 23, 32, 742300)),
        (postgresql.dialect(), "2026-12-02 02:23:32.7+00", datetime(2026, 12, 2, 2, 23, 32, 700000)),
        (postgresql.dialect(), "2026-12-02 02:23:32.74231+00", datetime(2026, 12, 2, 2, 23, 32, 742310)),
        (postgresql.dialect(), "2026-12-02 02:23:32+00", datetime(2026, 12, 2, 2, 23, 32)),
        # A session in another zone (keel's are in UTC): still the same instant.
        (postgresql.dialect(), "2026-12-02 07:53:32.742308+05:30", datetime(2026, 12, 2, 2, 23, 32, 742308)),
        (postgresql.dialect(), "2026-12-01 21:23:32.5-05", datetime(2026, 12, 2, 2, 23, 32, 500000)),
        (sqlite.dialect(), "2026-12-02 02:23:32.742308", datetime(2026, 12, 2, 2, 23, 32, 742308)),
        (sqlite.dialect(), "2026-12-02 02:23:32.000000", datetime(2026, 12, 2, 2, 23, 32)),
        (sqlite.dialect(), "2026-12-02 02:23:32", datetime(2026, 12, 2, 2, 23, 32)),
        # Written by another program (sqlite3's own adapter keeps the offset).
        (sqlite.dialect(), "2026-12-02 02:23:32.742308+00:00", datetime(2026, 12, 2, 2, 23, 32, 742308)),
    ],
)
def test_every_spelling_of_a_timestamp_renders_as_its_instant(dialect: object, text: str, moment: datetime) -> None:
    process = RenderedTimestamp().result_processor(dialect, None)  # type: ignore[arg-type]
    assert process is not None
    assert render(process(text)) == render(moment.replace(tzinfo=UTC))
    assert process(None) is None


def _instant(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
