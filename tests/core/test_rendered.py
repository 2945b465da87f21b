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
from keel.core.rendered import RenderedTimestamp, rendered_json, rendered_timestamp, rendered_uuid
from keel.core.responses import render
from tests.fixtures.databases import database_settings

_BY_TYPE = (OutboxEvent.event_type == bindparam("event_type"),)
_DECODED = PreparedRead(
    select(OutboxEvent.created_at, OutboxEvent.payload, OutboxEvent.id, OutboxEvent.org_id)
    .where(*_BY_TYPE)
    .order_by(OutboxEvent.id)
)
_RENDERED = PreparedRead(
    select(
        rendered_timestamp(OutboxEvent.created_at),
        rendered_json(OutboxEvent.payload),
        rendered_uuid(OutboxEvent.id),
        rendered_uuid(OutboxEvent.org_id),
    )
    .where(*_BY_TYPE)
    .order_by(OutboxEvent.id)
)

# Whole seconds (no fraction in JSON), fractions with trailing zeros, one
# microsecond, and instants given in other zones.
_MOMENTS = (
    datetime(2026, 3, 1, 14, 30, 5, tzinfo=UTC),
    datetime(2026, 3, 1, 14, 30, 5, 100000, tzinfo=UTC),
    datetime(2026, 3, 1, 14, 30, 5, 120000, tzinfo=UTC),
    datetime(2026, 3, 1, 14, 30, 5, 1, tzinfo=UTC),
    datetime(2026, 3, 1, 14, 30, 5, 742308, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    # Years below 1000 keep four digits; midnight of a new year, with its zone's offset.
    datetime(987, 6, 5, 4, 3, 2, 10, tzinfo=UTC),
    datetime(2027, 1, 1, 0, 0, 0, tzinfo=timezone(timedelta(hours=-8))),
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
            org_id = None if number == 2 else uuid.uuid4()  # a null UUID column too
            await emit(session, event_type, _PAYLOADS[number % len(_PAYLOADS)], org_id=org_id)
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
    # Code that computes with a read id reads it as a UUID.
    assert [uuid.UUID(str(row[2])) for row in on_driver] == [row[2] for row in decoded]
    assert sum(row[3] is None for row in on_driver) == 1


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-12-02 02:23:32.742308", datetime(2026, 12, 2, 2, 23, 32, 742308)),
        ("2026-12-02 02:23:32.000000", datetime(2026, 12, 2, 2, 23, 32)),
        ("2026-12-02 02:23:32", datetime(2026, 12, 2, 2, 23, 32)),
        # Written by another program (sqlite3's own adapter keeps the offset).
        ("2026-12-02 02:23:32.742308+00:00", datetime(2026, 12, 2, 2, 23, 32, 742308)),
    ],
)
def test_every_spelling_of_a_stored_sqlite_timestamp_renders_as_its_instant(text: str, moment: datetime) -> None:
    process = RenderedTimestamp().result_processor(sqlite.dialect(), None)  # type: ignore[arg-type]
    assert process is not None
    assert render(process(text)) == render(moment.replace(tzinfo=UTC))
    assert process(None) is None


def test_postgresql_writes_the_json_string_itself() -> None:
    assert RenderedTimestamp().result_processor(postgresql.dialect(), None) is None  # type: ignore[arg-type]
    compiled = str(select(rendered_timestamp(OutboxEvent.created_at)).compile(dialect=postgresql.dialect()))
    assert "to_char(timezone('UTC', outbox_events.created_at)" in compiled


def _instant(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)
