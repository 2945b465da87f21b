"""Who the client is, honouring X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

from starlette.types import Scope

_FORWARDED_FOR = b"x-forwarded-for"


def client_ip(scope: Scope, trusted_proxies: frozenset[str]) -> str:
    """The address of the client that sent this request.

    The peer address is used unless the peer is a configured trusted proxy;
    then ``X-Forwarded-For`` is walked from the right, skipping trusted hops,
    so a client cannot spoof its address by sending the header itself.
    """
    peer = scope.get("client")
    address = peer[0] if peer else "unknown"
    if address not in trusted_proxies:
        return address
    hops: list[str] = []
    for name, value in scope["headers"]:
        if name == _FORWARDED_FOR:
            hops.extend(hop.strip() for hop in value.decode("latin-1").split(","))
    for hop in reversed(hops):
        if hop and hop not in trusted_proxies:
            return hop
    return address
