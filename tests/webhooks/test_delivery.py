"""Webhook delivery end to end: a change committed by the API reaches a real
HTTP receiver on 127.0.0.1, signed so that the `standardwebhooks` library
verifies it; failures are retried with the same webhook-id, then
dead-lettered; a bad receiver never holds up a good one."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from aiohttp import web
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr
from sqlalchemy import select, update
from standardwebhooks import Webhook

from keel.config import Settings, WebhookSettings, WorkerSettings
from keel.core.clock import now
from keel.core.metrics import Metrics
from keel.core.outbox import emit
from keel.core.platform import platform
from keel.core.worker import Worker
from keel.main import create_app
from keel.webhooks import signing
from keel.webhooks.deliveries.models import WebhookAttempt
from keel.webhooks.dispatcher import Dispatcher
from keel.webhooks.endpoints.models import WebhookEndpoint
from keel.webhooks.endpoints.service import EndpointPolicy
from keel.webhooks.fanout import WebhookFanout
from keel.webhooks.metrics import WebhookMetrics
from keel.webhooks.secret_box import SecretBox
from tests.fixtures.accounts import API, Account, register
from tests.fixtures.servers import free_port
from tests.fixtures.waiting import eventually
from tests.fixtures.webhooks import (
    Receiver,
    add_endpoint,
    answer_500,
    attempted,
    create_task,
    deliveries_of,
    hooked_app,
    settled,
)


def test_signatures_match_the_standard_webhooks_test_vector() -> None:
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert signing.sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    # While a rotated secret overlaps, both sign; a receiver holding either verifies.
    # (The library checks the timestamp against its clock: a fresh one here.)
    fresh = int(datetime.now(UTC).timestamp())
    rotated = signing.new_signing_secret()
    headers = signing.headers([rotated, secret], "msg_1", fresh, body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    for known in (secret, rotated):
        assert Webhook(known).verify(body, headers) == {"test": 2432232314}


async def test_a_committed_change_reaches_the_receiver_signed_and_in_order(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    app, client, owner, endpoint = await hooked_app(delivering, make_client, receiver.url, event_types=["task.created"])
    tasks = [await create_task(client, owner, f"hooked {n}") for n in range(3)]
    await receiver.wait_for(3)

    verifier = Webhook(endpoint["secret"])
    payloads = [verifier.verify(body, headers) for headers, body in receiver.received]
    assert [p["type"] for p in payloads] == ["task.created"] * 3
    assert sorted(p["data"]["id"] for p in payloads) == sorted(t["id"] for t in tasks)
    seqs = sorted(p["org_seq"] for p in payloads)
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    # webhook-id is the event's, stable: receivers deduplicate by it.
    assert {headers["webhook-id"] for headers, _ in receiver.received} == {
        f"msg_{uuid.UUID(p['event_id']).hex}" for p in payloads
    }
    delivered = await settled(app, endpoint["id"], 3)
    assert {d.status for d in delivered} == {"delivered"}


async def test_a_failing_receiver_gets_retries_with_the_same_webhook_id_then_success(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    answers = iter([503, 500])

    async def flaky(_: web.Request) -> web.Response:
        return web.Response(status=next(answers, 200), text="nope" * 1000)

    receiver = await receivers(flaky)
    app, client, owner, endpoint = await hooked_app(delivering, make_client, receiver.url)
    await create_task(client, owner, "retried")
    [delivery] = await settled(app, endpoint["id"], 1)
    assert delivery.status == "delivered"
    assert delivery.attempts == 3
    assert len({headers["webhook-id"] for headers, _ in receiver.received}) == 1
    async with platform(app).database.session(write=False) as session:
        attempts = list(await session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)))
    assert sorted(a.status_code for a in attempts if a.status_code) == [200, 500, 503]
    # Only the first bytes of an answer are kept.
    assert all(a.response_excerpt is None or len(a.response_excerpt) <= 512 for a in attempts)


async def test_after_the_last_retry_a_delivery_is_dead_and_audited(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    receiver = await receivers(answer_500)
    app, client, owner, endpoint = await hooked_app(delivering, make_client, receiver.url)
    await create_task(client, owner, "doomed")
    [delivery] = await settled(app, endpoint["id"], 1)
    assert delivery.status == "dead"
    assert delivery.attempts == 3  # the first and the schedule's two retries
    assert len(receiver.received) == 3
    audit = await client.get(f"{API}/orgs/{owner.personal_org_id}/audit-log", headers=owner.headers)
    assert "webhook.exhausted" in {entry["action"] for entry in audit.json()["items"]}
    metrics = (await client.get("/metrics")).text
    assert 'keel_webhook_attempts_total{outcome="dead"}' in metrics


async def test_delivery_logs_name_the_message_and_endpoint_never_the_secret_or_the_body(
    delivering: Callable[..., FastAPI],
    make_client: Callable[..., Any],
    receivers: Callable[..., Any],
    log_lines: Callable[[], str],
) -> None:
    receiver = await receivers(answer_500)
    app, client, owner, endpoint = await hooked_app(delivering, make_client, receiver.url)
    await create_task(client, owner, "title-that-stays-out-of-logs")
    [delivery] = await settled(app, endpoint["id"], 1)
    logged = log_lines()
    failed = [line for line in logged.splitlines() if "webhook.failed" in line]
    # Every failure names its message and endpoint (on a shared database the
    # dispatcher may also retry another test's delivery: hence "every" and "ours").
    assert all("webhook_id" in line and "endpoint_id" in line for line in failed)
    ours = [line for line in failed if endpoint["id"] in line]
    assert ours
    assert all(delivery.message_id in line for line in ours)
    assert "title-that-stays-out-of-logs" not in logged
    assert endpoint["secret"] not in logged
    assert endpoint["secret"].removeprefix("whsec_") not in logged


async def seal_under_a_lost_key(app: FastAPI, endpoint_id: str, **secrets: str) -> None:
    """Store the endpoint's secrets (by column) sealed under a key this process was never given."""
    lost_key = SecretBox(SecretStr("a key this process was never given, long enough"))
    async with platform(app).database.session(write=True) as session, session.begin():
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == uuid.UUID(endpoint_id))
            .values({column: lost_key.seal(secret) for column, secret in secrets.items()})
        )


async def rotate_secret(client: httpx.AsyncClient, owner: Account, endpoint: dict[str, Any]) -> dict[str, Any]:
    rotated = await client.post(
        f"{API}/orgs/{owner.personal_org_id}/webhooks/{endpoint['id']}/rotate-secret", headers=owner.headers
    )
    assert rotated.status_code == 201, rotated.text
    body: dict[str, Any] = rotated.json()
    return body


async def signed_by_only(receiver: Receiver, secret: str) -> None:
    """The receiver's one delivery carries one signature, made with ``secret``."""
    await receiver.wait_for(1)
    [(headers, body)] = receiver.received
    assert Webhook(secret).verify(body, headers)["type"] == "task.created"
    assert len(headers["webhook-signature"].split(" ")) == 1


async def test_a_secret_sealed_with_a_lost_key_fails_its_attempts_without_sending(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    app, client, owner, endpoint = await hooked_app(delivering, make_client, receiver.url)
    await seal_under_a_lost_key(app, endpoint["id"], secret_sealed=signing.new_signing_secret())
    await create_task(client, owner, "unsigned")
    # Each attempt is recorded as failed (never an exception that leaves the
    # delivery leased), and the retries run out to a dead letter.
    [delivery] = await settled(app, endpoint["id"], 1)
    assert delivery.status == "dead"
    assert delivery.attempts == 3
    assert "key keel no longer has" in (delivery.last_error or "")
    assert receiver.received == []
    # Rotating gives a secret keel can open; only it signs (nothing to overlap with).
    rotated = await rotate_secret(client, owner, endpoint)
    assert rotated["previous_expires_at"] is None
    await create_task(client, owner, "signed again")
    await signed_by_only(receiver, rotated["secret"])


async def test_a_previous_secret_sealed_with_a_lost_key_leaves_the_current_one_signing(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    """During a rotation's overlap both secrets sign; if the previous one can
    no longer be opened, the current one signs alone rather than the attempt failing."""
    receiver = await receivers()
    app, client, owner, endpoint = await hooked_app(delivering, make_client, receiver.url)
    rotated = await rotate_secret(client, owner, endpoint)
    assert rotated["previous_expires_at"] is not None
    await seal_under_a_lost_key(app, endpoint["id"], previous_secret_sealed=endpoint["secret"])
    await create_task(client, owner, "signed by the current secret")
    await signed_by_only(receiver, rotated["secret"])


async def test_410_gone_disables_the_endpoint(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    async def gone(_: web.Request) -> web.Response:
        return web.Response(status=410)

    receiver = await receivers(gone)
    app, client, owner, endpoint = await hooked_app(delivering, make_client, receiver.url)
    await create_task(client, owner, "gone")
    [delivery] = await settled(app, endpoint["id"], 1)
    assert delivery.status == "dead"
    shown = await client.get(f"{API}/orgs/{owner.personal_org_id}/webhooks/{endpoint['id']}", headers=owner.headers)
    assert shown.json()["enabled"] is False
    assert "410" in shown.json()["disabled_reason"]
    await create_task(client, owner, "not sent")
    await asyncio.sleep(0.5)
    assert len(receiver.received) == 1


async def test_the_gauges_count_dead_letters_and_disabled_endpoints(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    async def gone(_: web.Request) -> web.Response:
        return web.Response(status=410)

    receiver = await receivers(gone)
    app = delivering()
    before = await gauges(app)
    client = await make_client(app)
    owner = await register(client)
    endpoint = await add_endpoint(client, owner, receiver.url)
    await create_task(client, owner, "gone")
    await settled(app, endpoint["id"], 1)
    after = await gauges(app)
    assert after["keel_webhook_dead_letters"] == before["keel_webhook_dead_letters"] + 1
    assert after["keel_webhook_endpoints_disabled"] == before["keel_webhook_endpoints_disabled"] + 1


async def gauges(app: FastAPI) -> dict[str, float]:
    """The dead-letter and disabled-endpoint gauges as a dispatcher counts them now."""
    registry = CollectorRegistry()
    dispatcher = Dispatcher(
        platform(app).database,
        platform(app).settings.webhooks,
        platform(app).get(EndpointPolicy).secrets,
        WebhookMetrics(registry),
        wake=lambda: None,
        look_every_s=1.0,
    )
    await dispatcher.count_gauges()
    names = ("keel_webhook_dead_letters", "keel_webhook_endpoints_disabled")
    return {name: registry.get_sample_value(name) or 0.0 for name in names}


async def test_hanging_failing_huge_and_redirecting_receivers_do_not_hold_up_a_healthy_one(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(30)
        return web.Response(status=200)

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=500)
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):  # keel reads a few bytes and hangs up
            for _ in range(320):  # 20 MB
                await response.write(b"x" * 65536)
        return response

    async def redirect(_: web.Request) -> web.Response:
        return web.Response(status=307, headers={"location": "http://10.0.0.1/steal"})

    bad = [await receivers(answer) for answer in (hang, answer_500, huge, redirect)]
    healthy = await receivers()
    app = delivering(webhook_timeout_s=1.0, webhook_retry_schedule_s=[60.0])
    client = await make_client(app)
    owner = await register(client)
    hanging, failing, streaming, redirecting = [await add_endpoint(client, owner, r.url) for r in bad]
    await add_endpoint(client, owner, healthy.url)
    for n in range(5):
        await create_task(client, owner, f"burst {n}")
    started = asyncio.get_running_loop().time()
    await healthy.wait_for(5, within_s=5)
    assert asyncio.get_running_loop().time() - started < 5
    # Each bad one's deliveries: attempted, failed, waiting for their retry.
    for endpoint, status in ((failing, 500), (streaming, 500), (redirecting, 307)):
        tried = await attempted(app, endpoint["id"], 5)
        assert all(d.status == "pending" and d.last_status_code == status for d in tried)
    async with platform(app).database.session(write=False) as session:
        excerpts = (await session.scalars(select(WebhookAttempt.response_excerpt))).all()
    assert excerpts
    assert all(e is None or len(e) <= 512 for e in excerpts)  # never the 20 MB body
    timed_out = await deliveries_of(app, hanging["id"])
    assert len(timed_out) == 5
    assert all(d.status == "pending" for d in timed_out)


async def test_a_host_that_resolves_to_a_private_address_is_refused_at_delivery(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    app, client, owner, endpoint = await hooked_app(
        delivering,
        make_client,
        "https://hooks.example.com/keel",
        webhook_allow_private_targets=False,
        webhook_retry_schedule_s=[60.0],
    )
    # As if its DNS now answered 127.0.0.1 (rebinding): a name that resolves there.
    port = receiver.url.split(":")[2].split("/")[0]
    async with platform(app).database.session(write=True) as session, session.begin():
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == uuid.UUID(endpoint["id"]))
            .values(url=f"http://localhost:{port}/hook")
        )
    await create_task(client, owner, "rebinding")

    async def attempted() -> bool:
        return any(d.attempts for d in await deliveries_of(app, endpoint["id"]))

    assert await eventually(attempted, within_s=10)
    [delivery] = await deliveries_of(app, endpoint["id"])
    assert delivery.last_error is not None
    assert "refused" in delivery.last_error
    assert receiver.received == []
    body = orjson.loads(delivery.body)
    assert body["type"] == "task.created"


async def test_admins_see_deliveries_with_their_attempts_and_replay_dead_ones(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    healthy = asyncio.Event()

    async def down_until_healthy(_: web.Request) -> web.Response:
        return web.Response(status=204 if healthy.is_set() else 500)

    receiver = await receivers(down_until_healthy)
    app, client, owner, endpoint = await hooked_app(delivering, make_client, receiver.url)
    hooks = f"{API}/orgs/{owner.personal_org_id}/webhooks/{endpoint['id']}"
    for n in range(2):
        await create_task(client, owner, f"dies {n}")
    await settled(app, endpoint["id"], 2)

    dead = await client.get(f"{hooks}/deliveries", params={"status": "dead"}, headers=owner.headers)
    assert dead.status_code == 200, dead.text
    items = dead.json()["items"]
    assert len(items) == 2
    assert all(item["attempts"] == 3 and item["last_status_code"] == 500 for item in items)
    assert all(item["webhook_id"].startswith("msg_") for item in items)
    detail = await client.get(f"{hooks}/deliveries/{items[0]['id']}", headers=owner.headers)
    assert detail.status_code == 200
    assert detail.json()["payload"]["type"] == "task.created"
    assert [a["status_code"] for a in detail.json()["attempt_log"]] == [500, 500, 500]
    paged = await client.get(f"{hooks}/deliveries", params={"limit": 1}, headers=owner.headers)
    assert paged.json()["next_cursor"] is not None

    healthy.set()
    retried = await client.post(f"{hooks}/deliveries/{items[0]['id']}/retry", headers=owner.headers)
    assert retried.status_code == 202
    assert retried.json() == {"requeued": 1}
    again = await client.post(f"{hooks}/deliveries/{items[0]['id']}/retry", headers=owner.headers)
    assert again.status_code == 409  # pending now, not dead
    replayed = await client.post(f"{hooks}/replay", json={"since": "2000-01-01T00:00:00Z"}, headers=owner.headers)
    assert replayed.json() == {"requeued": 1}
    await receiver.wait_for(8)
    await settled(app, endpoint["id"], 2)
    assert {d.status for d in await deliveries_of(app, endpoint["id"])} == {"delivered"}
    # Replayed with their original webhook-ids.
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert len(set(ids)) == 2
    assert len(ids) == 8


async def test_a_test_ping_reaches_only_its_endpoint(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    pinged, other = await receivers(), await receivers()
    _app, client, owner, endpoint = await hooked_app(delivering, make_client, pinged.url, event_types=["task.deleted"])
    await add_endpoint(client, owner, other.url)
    sent = await client.post(
        f"{API}/orgs/{owner.personal_org_id}/webhooks/{endpoint['id']}/test", headers=owner.headers
    )
    assert sent.status_code == 202
    await pinged.wait_for(1)
    [(headers, body)] = pinged.received
    assert Webhook(endpoint["secret"]).verify(body, headers)["type"] == "ping"
    await asyncio.sleep(0.3)
    assert other.received == []


async def test_deliveries_of_another_org_are_not_found(client: httpx.AsyncClient) -> None:
    owner, stranger = await register(client), await register(client)
    created = await client.post(
        f"{API}/orgs/{owner.personal_org_id}/webhooks",
        json={"url": "https://hooks.example.com/x"},
        headers=owner.headers,
    )
    endpoint_id = created.json()["id"]
    # Through the owner's org (not the stranger's) and through the stranger's own org alike.
    for org in (owner.personal_org_id, stranger.personal_org_id):
        hooks = f"{API}/orgs/{org}/webhooks/{endpoint_id}"
        assert (await client.get(f"{hooks}/deliveries", headers=stranger.headers)).status_code == 404
        assert (await client.post(f"{hooks}/test", headers=stranger.headers)).status_code == 404
    missing = f"{API}/orgs/{owner.personal_org_id}/webhooks/{endpoint_id}/deliveries/{uuid.uuid4()}"
    assert (await client.get(missing, headers=owner.headers)).status_code == 404


async def test_an_endpoint_gets_at_most_its_rate(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    app = delivering(webhook_rate_limit_per_endpoint_per_s=2.0)
    client = await make_client(app)
    owner = await register(client)
    await add_endpoint(client, owner, receiver.url)
    for n in range(6):
        await create_task(client, owner, f"paced {n}")
    await receiver.wait_for(1)
    first = asyncio.get_running_loop().time()
    await asyncio.sleep(0.5)
    # A burst of two, then two a second: however fast the host, never more.
    assert len(receiver.received) <= 3
    await receiver.wait_for(6, within_s=15)
    assert asyncio.get_running_loop().time() - first >= 1.5


async def test_retry_after_on_503_is_honoured(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    async def busy(_: web.Request) -> web.Response:
        return web.Response(status=503, headers={"retry-after": "120"})

    receiver = await receivers(busy)
    app, client, owner, endpoint = await hooked_app(
        delivering, make_client, receiver.url, webhook_retry_schedule_s=[0.2]
    )
    await create_task(client, owner, "later")
    await receiver.wait_for(1)

    async def recorded() -> bool:
        return any(d.attempts for d in await deliveries_of(app, endpoint["id"]))

    assert await eventually(recorded)
    [delivery] = await deliveries_of(app, endpoint["id"])
    assert delivery.status == "pending"
    assert delivery.last_status_code == 503
    assert delivery.next_attempt_at is not None
    # Not the schedule's 0.2 s: the receiver's two minutes.
    assert delivery.next_attempt_at - now() > timedelta(seconds=100)


async def test_an_endpoint_failing_for_too_long_is_disabled_and_audited(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    receiver = await receivers(answer_500)
    _app, client, owner, endpoint = await hooked_app(
        delivering, make_client, receiver.url, webhook_disable_after_failing_s=0.5, webhook_retry_schedule_s=[0.3] * 10
    )
    await create_task(client, owner, "failing")
    shown = f"{API}/orgs/{owner.personal_org_id}/webhooks/{endpoint['id']}"

    async def disabled() -> bool:
        return (await client.get(shown, headers=owner.headers)).json()["enabled"] is False

    assert await eventually(disabled, within_s=10)
    assert "failed" in (await client.get(shown, headers=owner.headers)).json()["disabled_reason"]
    audit = await client.get(f"{API}/orgs/{owner.personal_org_id}/audit-log", headers=owner.headers)
    assert "webhook.endpoint_disabled" in {entry["action"] for entry in audit.json()["items"]}
    # Enabled again, it starts afresh and its waiting delivery is tried again.
    tried = len(receiver.received)
    enabled = await client.patch(shown, json={"enabled": True}, headers=owner.headers)
    assert enabled.json()["failing_since"] is None
    await receiver.wait_for(tried + 1)


async def test_two_workers_never_send_one_delivery_at_the_same_time(
    make_settings: Callable[..., Settings], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    in_flight: Counter[str] = Counter()
    overlapped: list[str] = []

    async def slow(request: web.Request) -> web.Response:
        webhook_id = request.headers["webhook-id"]
        in_flight[webhook_id] += 1
        if in_flight[webhook_id] > 1:
            overlapped.append(webhook_id)
        await asyncio.sleep(0.02)
        in_flight[webhook_id] -= 1
        return web.Response(status=204)

    receiver = await receivers(slow)
    # This app's own worker is off: the two workers below do the work.
    app = create_app(make_settings(webhooks=WebhookSettings(webhook_allow_private_targets=True)))
    client = await make_client(app)
    owner = await register(client)
    await add_endpoint(client, owner, receiver.url)
    database = platform(app).database
    async with database.session(write=True) as session, session.begin():
        for n in range(150):
            await emit(session, "task.created", {"n": n}, org_id=uuid.UUID(owner.personal_org_id))
    settings = WebhookSettings(webhook_allow_private_targets=True, webhook_rate_limit_per_endpoint_per_s=10_000)
    policy = platform(app).get(EndpointPolicy)
    workers = []
    for _ in range(2):
        worker = Worker(database, WorkerSettings(worker_poll_interval_s=0.05, worker_batch_size=20), Metrics())
        metrics = WebhookMetrics(CollectorRegistry())
        dispatcher = Dispatcher(database, settings, policy.secrets, metrics, wake=worker.wake_passes, look_every_s=0.05)
        worker.add_consumer(WebhookFanout(added=dispatcher.deliveries_added))
        worker.add_pass(dispatcher)
        worker.start()
        workers.append(worker)
    try:
        await receiver.wait_for(150, within_s=30)
        await asyncio.sleep(0.3)  # anything sent twice would arrive by now
    finally:
        for worker in workers:
            await worker.stop()
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert len(set(ids)) == 150
    assert overlapped == []
    assert len(ids) == 150  # nobody crashed, so nothing was sent twice


async def test_a_fast_receiver_gets_each_message_once_and_each_is_recorded_at_once(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    """An attempt answered within a millisecond is recorded against the lease
    it was made under, never found leaseless and sent again once the lease
    runs out."""
    receiver = await receivers()
    app, _client, owner, endpoint = await hooked_app(
        delivering,
        make_client,
        receiver.url,
        webhook_rate_limit_per_endpoint_per_s=10_000,
        webhook_max_concurrency_per_endpoint=32,
    )
    async with platform(app).database.session(write=True) as session, session.begin():
        for n in range(300):
            await emit(session, "task.created", {"n": n}, org_id=uuid.UUID(owner.personal_org_id))
    await receiver.wait_for(300, within_s=30)
    # Well within the lease (2 x the 2 s timeout + 5 s): each is recorded as it is answered.
    delivered = await settled(app, endpoint["id"], 300, within_s=3)
    assert {(d.status, d.attempts) for d in delivered} == {("delivered", 1)}
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert len(ids) == len(set(ids)) == 300


async def test_a_receiver_down_for_a_while_gets_every_event_once_it_is_back(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    port = free_port()  # nothing listens there yet: every attempt is refused
    app, client, owner, endpoint = await hooked_app(
        delivering, make_client, f"http://127.0.0.1:{port}/hook", webhook_retry_schedule_s=[0.3] * 20
    )
    for n in range(20):
        await create_task(client, owner, f"while down {n}")

    async def failed_twice() -> bool:
        found = await deliveries_of(app, endpoint["id"])
        return len(found) == 20 and all(d.status == "pending" and d.attempts >= 2 for d in found)

    assert await eventually(failed_twice, within_s=10)
    receiver = await receivers(port=port)
    await receiver.wait_for(20, within_s=10)
    delivered = await settled(app, endpoint["id"], 20)
    assert {d.status for d in delivered} == {"delivered"}
    assert {d.last_error for d in delivered} == {None}
    await asyncio.sleep(0.5)  # a second copy of any message would have arrived by now
    ids = [headers["webhook-id"] for headers, _ in receiver.received]
    assert len(ids) == len(set(ids)) == 20


async def test_admins_purge_dead_letters_for_good(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    receiver = await receivers(answer_500)
    app, client, owner, endpoint = await hooked_app(delivering, make_client, receiver.url)
    hooks = f"{API}/orgs/{owner.personal_org_id}/webhooks/{endpoint['id']}"
    for n in range(3):
        await create_task(client, owner, f"doomed {n}")
    dead = await settled(app, endpoint["id"], 3)
    assert {d.status for d in dead} == {"dead"}

    older = await client.post(f"{hooks}/purge-dead", json={"before": "2000-01-01T00:00:00Z"}, headers=owner.headers)
    assert older.status_code == 200, older.text
    assert older.json() == {"purged": 0}
    member = await register(client)
    outsider = await client.post(
        f"{API}/orgs/{member.personal_org_id}/webhooks/{endpoint['id']}/purge-dead", json={}, headers=member.headers
    )
    assert outsider.status_code == 404  # another org's endpoint
    purged = await client.post(f"{hooks}/purge-dead", json={}, headers=owner.headers)
    assert purged.json() == {"purged": 3}
    assert await deliveries_of(app, endpoint["id"]) == []
    async with platform(app).database.session(write=False) as session:
        attempts = await session.scalars(
            select(WebhookAttempt).where(WebhookAttempt.delivery_id.in_([d.id for d in dead]))
        )
        assert list(attempts) == []
    audit = await client.get(f"{API}/orgs/{owner.personal_org_id}/audit-log", headers=owner.headers)
    assert "webhook.dead_purged" in {entry["action"] for entry in audit.json()["items"]}
    bad = await client.post(f"{hooks}/purge-dead", json={"before": "yesterday"}, headers=owner.headers)
    assert bad.status_code == 422


async def test_an_endpoint_that_keeps_failing_rests_and_is_served_again_once_a_probe_succeeds(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    recovered = asyncio.Event()

    async def down_until_recovered(_: web.Request) -> web.Response:
        return web.Response(status=204 if recovered.is_set() else 500)

    failing, healthy = await receivers(down_until_recovered), await receivers()
    app, client, owner, rested = await hooked_app(
        delivering, make_client, failing.url, webhook_retry_schedule_s=[0.05] * 100, webhook_rest_after_failures=3
    )
    await add_endpoint(client, owner, healthy.url)
    for n in range(10):
        await create_task(client, owner, f"rested {n}")
    await healthy.wait_for(10, within_s=5)
    await asyncio.sleep(1.5)
    # Retried every 50 ms, ten deliveries would make some 300 attempts in
    # these 1.5 s. Rested once 3 attempts in a row have failed (4 may be in
    # flight, and a place freed by an early failure may start one more before
    # the third), each further failure doubling the rest: a handful at most.
    assert len(failing.received) <= 8
    assert {d.status for d in await deliveries_of(app, rested["id"])} == {"pending"}  # waiting, none dead
    recovered.set()
    delivered = await settled(app, rested["id"], 10, within_s=10)  # at the next probe, then all
    assert {d.status for d in delivered} == {"delivered"}
