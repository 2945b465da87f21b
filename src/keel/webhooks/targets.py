"""Where webhooks may be sent: public addresses only, unless allowed.

A URL is checked when an endpoint is saved (its form, its scheme, and a host
that is an address or a local name) and again for every attempt, on the
addresses its host resolves to at that moment (``GuardedResolver``), so a
name that later points inside the network (DNS rebinding) is refused before
any connection. Redirects are never followed.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp import ThreadedResolver
from aiohttp.abc import AbstractResolver, ResolveResult

MAX_URL_LENGTH = 2048
# Names that always mean "this machine" or a cloud's metadata service.
_LOCAL_NAMES = ("localhost", "localhost.localdomain", "metadata.google.internal", "metadata")
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TargetRefused(ValueError):
    """A URL or address webhooks may not be sent to; the message says why."""


def forbidden_address(address: IpAddress) -> bool:
    """Loopback, private, link-local (cloud metadata included), multicast,
    reserved or otherwise not globally routable."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def _literal_address(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def checked_url(url: str, *, require_https: bool, allow_private: bool) -> str:
    """``url`` if webhooks may be sent there, else TargetRefused saying why."""
    if len(url) > MAX_URL_LENGTH:
        raise TargetRefused(f"must be at most {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise TargetRefused("is not a valid URL") from None
    allowed_schemes = ("https",) if require_https else ("https", "http")
    if parts.scheme not in allowed_schemes:
        raise TargetRefused("must use https" if require_https else "must use http or https")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise TargetRefused("must name a host")
    if parts.username is not None or parts.password is not None:
        raise TargetRefused("must not carry credentials")
    if parts.fragment:
        raise TargetRefused("must not have a fragment")
    if port == 0:
        raise TargetRefused("must not use port 0")
    if allow_private:
        return url
    address = _literal_address(host)
    if address is not None and forbidden_address(address):
        raise TargetRefused("points to a private, loopback, link-local or reserved address")
    if host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES) or ("." not in host and address is None):
        raise TargetRefused("names a local host")
    return url


class GuardedResolver(AbstractResolver):
    """aiohttp's threaded resolver, refusing a host any of whose addresses is
    forbidden (see :func:`forbidden_address`) before a connection is made."""

    def __init__(self, *, allow_private: bool) -> None:
        self._resolver = ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        resolved = await self._resolver.resolve(host, port, family)
        if not self._allow_private:
            for entry in resolved:
                if forbidden_address(ipaddress.ip_address(entry["host"])):
                    raise TargetRefused(f"{host} resolves to a private or reserved address")
        return resolved

    async def close(self) -> None:
        await self._resolver.close()


def literal_refused(url: str, *, allow_private: bool) -> bool:
    """Whether ``url``'s host is an address webhooks may not reach (aiohttp
    does not resolve literal addresses, so the resolver never sees them)."""
    if allow_private:
        return False
    address = _literal_address((urlsplit(url).hostname or "").lower())
    return address is not None and forbidden_address(address)
