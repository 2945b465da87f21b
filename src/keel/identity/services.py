"""Identity's long-lived collaborators, built once per app and injected."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from keel.config import Settings
from keel.core.platform import request_platform
from keel.core.security import PasswordHasher, TokenSigner
from keel.identity.tokens.service import TokenIssuer


@dataclass(frozen=True)
class IdentityServices:
    hasher: PasswordHasher
    issuer: TokenIssuer

    @classmethod
    def build(cls, settings: Settings, signer: TokenSigner) -> IdentityServices:
        return cls(
            hasher=PasswordHasher(settings.auth),
            issuer=TokenIssuer(signer=signer, settings=settings.auth, derivation_key=settings.signing_key),
        )


async def identity_services(request: Request) -> IdentityServices:
    return request_platform(request).get(IdentityServices)


Identity = Annotated[IdentityServices, Depends(identity_services)]
