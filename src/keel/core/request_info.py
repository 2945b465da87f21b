"""Where a request came from, for audit rows: address, user agent, request id."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from keel.core.errors import scope_request_id
from keel.core.network import client_ip
from keel.core.platform import request_platform

_MAX_USER_AGENT = 256


@dataclass(frozen=True, slots=True)
class RequestInfo:
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


async def request_info(request: Request) -> RequestInfo:
    trusted = frozenset(request_platform(request).settings.http.trusted_proxies)
    agent = request.headers.get("user-agent")
    return RequestInfo(
        ip=client_ip(request.scope, trusted),
        user_agent=agent[:_MAX_USER_AGENT] if agent else None,
        request_id=scope_request_id(request.scope),
    )


CurrentRequestInfo = Annotated[RequestInfo, Depends(request_info)]
