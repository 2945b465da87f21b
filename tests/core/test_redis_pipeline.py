"""The pipelined Redis connection: replies reach their own callers, errors stay
with the command that caused them, and a broken or silent Redis is reported,
not waited on forever."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from keel.core.event_loop import new_event_loop
from keel.core.redis_pipeline import RedisPipeline, RedisReplyError, RedisUnavailable, pack, pipeline_supports
from tests.fixtures.databases import redis_test_url
from tests.fixtures.silent_redis import silent_redis


def _url() -> str:
    url = redis_test_url()
    assert url is not None
    return url


@contextlib.asynccontextmanager
async def pipeline(url: str, timeout_s: float = 1.0) -> AsyncIterator[RedisPipeline]:
    connection = RedisPipeline(url, timeout_s=timeout_s)
    try:
        yield connection
    finally:
        await connection.close()


def test_only_plain_urls_are_taken() -> None:
    assert pipeline_supports("redis://127.0.0.1:6379/0")
    assert pipeline_supports("rediss://user:secret@redis.internal:6380/2")
    assert pipeline_supports("unix:///run/redis.sock?db=1")
    assert not pipeline_supports("rediss://redis.internal/0?ssl_cert_reqs=none")
    assert not pipeline_supports("redis+sentinel://redis.internal/0")
    with pytest.raises(ValueError, match="unsupported"):
        RedisPipeline("rediss://redis.internal/0?ssl_certfile=/x", timeout_s=1)


def test_commands_are_packed_in_the_redis_protocol() -> None:
    assert pack(b"GET", b"key") == b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n"
    assert pack(b"ECHO", b"") == b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n"


@pytest.mark.redis
async def test_concurrent_callers_each_get_their_own_reply() -> None:
    async with pipeline(_url()) as redis:
        values = [f"value-{n}-{uuid.uuid4().hex}".encode() for n in range(300)]
        replies = await asyncio.gather(*(redis.execute(pack(b"ECHO", value)) for value in values))
        assert replies == values


@pytest.mark.redis
async def test_an_error_reply_fails_only_its_own_caller() -> None:
    key = f"keel-test-{uuid.uuid4().hex}".encode()
    async with pipeline(_url()) as redis:
        results = await asyncio.gather(
            redis.execute(pack(b"SET", key, b"text")),
            redis.execute(pack(b"INCR", key)),  # not a number: an error reply
            redis.execute(pack(b"GET", key)),
            return_exceptions=True,
        )
        assert results[0] == b"OK"
        assert isinstance(results[1], RedisReplyError)
        assert "not an integer" in str(results[1])
        assert results[2] == b"text"
        await redis.execute(pack(b"DEL", key))


@pytest.mark.redis
async def test_the_database_in_the_url_is_selected() -> None:
    base = _url().rsplit("/", 1)[0]
    key = f"keel-test-{uuid.uuid4().hex}"
    async with pipeline(f"{base}/3") as redis:
        assert await redis.execute(pack(b"SET", key.encode(), b"in three", b"EX", b"60")) == b"OK"
    check = Redis.from_url(f"{base}/3")
    try:
        assert await check.get(key) == b"in three"
        assert await Redis.from_url(f"{base}/0").get(key) is None
    finally:
        await check.delete(key)
        await check.aclose()


@pytest.mark.redis
async def test_a_refused_password_is_redis_unavailable() -> None:
    host_and_port = _url().split("://", 1)[1].split("/", 1)[0]
    async with pipeline(f"redis://keel-test:wrong@{host_and_port}/0") as redis:
        with pytest.raises(RedisUnavailable):
            await redis.execute(pack(b"PING"))


@pytest.mark.redis
async def test_a_closed_connection_is_reopened_by_the_next_call() -> None:
    async with pipeline(_url()) as redis:
        assert await redis.execute(pack(b"QUIT")) == b"OK"  # Redis closes the connection after this
        await asyncio.sleep(0.05)
        assert await redis.execute(pack(b"PING")) == b"PONG"


async def test_unreachable_redis_is_reported_at_once() -> None:
    async with pipeline("redis://127.0.0.1:1/0") as redis:
        with pytest.raises(RedisUnavailable):
            await redis.execute(pack(b"PING"))


async def test_a_silent_redis_fails_every_waiting_caller_after_the_timeout() -> None:
    server = silent_redis(first_reply=b"+PONG\r\n")
    async with server as (port, received), pipeline(f"redis://127.0.0.1:{port}/0", timeout_s=0.2) as redis:
        assert await redis.execute(pack(b"PING")) == b"PONG"
        results = await asyncio.gather(*(redis.execute(pack(b"PING")) for _ in range(5)), return_exceptions=True)
        assert all(isinstance(result, RedisUnavailable) for result in results)
        # The five commands of one loop iteration left together, in one write.
        assert received[0] == [pack(b"PING"), pack(b"PING") * 5]
        # The connection was dropped: the next call opens a new one.
        assert await redis.execute(pack(b"PING")) == b"PONG"
        assert len(received) == 2


@pytest.mark.redis
async def test_traffic_that_never_lets_up_is_answered_past_the_timeout() -> None:
    """One timer watches the oldest unanswered command: commands kept in
    flight for several times the timeout, the queue never empty, are all
    answered on the one connection."""
    async with pipeline(_url(), timeout_s=0.2) as redis:
        assert await redis.execute(pack(b"PING")) == b"PONG"
        connection = redis._connection

        async def keep_pinging() -> int:
            answered, until = 0, time.monotonic() + 0.7
            while time.monotonic() < until:
                assert await redis.execute(pack(b"PING")) == b"PONG"
                answered += 1
            return answered

        assert all(await asyncio.gather(*(keep_pinging() for _ in range(8))))
        assert redis._connection is connection


async def test_a_command_sent_later_is_failed_with_the_overdue_one() -> None:
    """Redis answers in order: once the oldest command is overdue, one sent
    after it cannot be answered in time either, and both callers hear so."""
    async with (
        silent_redis(first_reply=b"+PONG\r\n") as (port, _),
        pipeline(f"redis://127.0.0.1:{port}/0", 0.3) as redis,
    ):
        assert await redis.execute(pack(b"PING")) == b"PONG"
        first = asyncio.ensure_future(redis.execute(pack(b"PING")))
        await asyncio.sleep(0.1)
        with pytest.raises(RedisUnavailable, match="in time"):  # dropped at the first one's deadline
            await redis.execute(pack(b"PING"))
        with pytest.raises(RedisUnavailable, match="in time"):
            await first


@pytest.mark.redis
def test_on_the_event_loop_keel_serve_runs() -> None:
    """`keel serve` runs on uvloop, whose transports are not asyncio's classes."""

    async def echo_all() -> list[bytes]:
        async with pipeline(_url()) as redis:
            return list(await asyncio.gather(*(redis.execute(pack(b"ECHO", b"%d" % n)) for n in range(50))))

    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        assert runner.run(echo_all()) == [b"%d" % n for n in range(50)]


async def test_callers_arriving_while_redis_is_reached_share_one_attempt() -> None:
    """A Redis that does not answer the handshake costs concurrent callers
    one connection attempt (and one timeout) together, not one each."""
    async with silent_redis() as (port, received), pipeline(f"redis://:secret@127.0.0.1:{port}/0", 0.2) as redis:
        results = await asyncio.gather(*(redis.execute(pack(b"PING")) for _ in range(5)), return_exceptions=True)
        assert all(isinstance(result, RedisUnavailable) for result in results)
        assert len(received) == 1
        assert received[0] == [pack(b"AUTH", b"secret")]
        # A later call makes a new attempt.
        with pytest.raises(RedisUnavailable):
            await redis.execute(pack(b"PING"))
        assert len(received) == 2


@pytest.mark.redis
async def test_empty_and_zero_replies_are_replies() -> None:
    missing = f"keel-test-{uuid.uuid4().hex}".encode()
    async with pipeline(_url()) as redis:
        assert await redis.execute(pack(b"GET", missing)) is None
        assert await redis.execute(pack(b"EXISTS", missing)) == 0
        assert await redis.execute(pack(b"ECHO", b"")) == b""


@pytest.mark.redis
async def test_a_command_on_a_connection_lost_meanwhile_fails_at_once() -> None:
    async with pipeline(_url(), timeout_s=30) as redis:
        assert await redis.execute(pack(b"PING")) == b"PONG"
        connection = redis._connection
        assert connection is not None
        connection.abort()
        await connection.lost
        with pytest.raises(RedisUnavailable):
            # At once, not after the pipeline's 30 s timeout for a reply that cannot come.
            await asyncio.wait_for(connection.send(pack(b"PING")), 5)
        assert await redis.execute(pack(b"PING")) == b"PONG"  # the pipeline opens a new one
