"""Staff single sign-on with OpenID Connect (gov.br, Azure AD, Google), through Authlib's Starlette client.

Authorization code flow with PKCE (S256), state and nonce; the ID token's signature is checked against the
provider's JWKS, and its issuer, audience, expiry and nonce by Authlib. Authlib keeps the flow's state in
`request.session`; instead of a session middleware (and its dependency) that state travels in a short-lived
cookie encrypted with Fernet, so the PKCE verifier is never readable by the browser and any app process can
finish a flow another one started.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from cryptography.fernet import Fernet, InvalidToken

from core.settings import OIDCProvider

STATE_TTL_S = 600  # ten minutes to sign in at the provider
_KNOWN_LABELS = {"govbr": "gov.br", "azure": "Microsoft", "azuread": "Microsoft", "google": "Google"}


@dataclass(frozen=True)
class ProviderInfo:
    name: str
    label: str


class OIDCClients:
    def __init__(self, providers: dict[str, OIDCProvider], *, state_key: bytes) -> None:
        self.providers = dict(providers)
        self._oauth = OAuth()
        for name, provider in self.providers.items():
            self._oauth.register(
                name=name,
                client_id=provider.client_id,
                client_secret=provider.client_secret.get_secret_value() or None,
                server_metadata_url=provider.metadata_url
                or provider.issuer.rstrip("/") + "/.well-known/openid-configuration",
                client_kwargs={"scope": provider.scope, "code_challenge_method": "S256"},
            )
        self._fernet = Fernet(base64.urlsafe_b64encode(state_key))

    def listed(self) -> list[ProviderInfo]:
        return [
            ProviderInfo(name, provider.label or _KNOWN_LABELS.get(name, name))
            for name, provider in sorted(self.providers.items())
        ]

    def client(self, name: str) -> StarletteOAuth2App | None:
        if name not in self.providers:
            return None
        client: StarletteOAuth2App = self._oauth.create_client(name)
        return client

    def seal(self, state: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(state).encode()).decode("ascii")

    def unseal(self, token: str | None) -> dict[str, Any]:
        """The flow state from the cookie; empty (so Authlib refuses the callback) if missing, forged or stale."""
        if not token:
            return {}
        try:
            data = json.loads(self._fernet.decrypt(token.encode("ascii"), ttl=STATE_TTL_S))
        except (InvalidToken, UnicodeEncodeError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


def claims_identity(userinfo: dict[str, Any]) -> tuple[str | None, str | None]:
    """(subject, e-mail) from verified ID-token claims; the e-mail only when the provider verified it."""
    subject = userinfo.get("sub")
    email = userinfo.get("email")
    verified = userinfo.get("email_verified")
    if verified is True or (isinstance(verified, str) and verified.lower() == "true"):
        return (str(subject) if subject else None), (str(email).strip().lower() if email else None)
    return (str(subject) if subject else None), None
