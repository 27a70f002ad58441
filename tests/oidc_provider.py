"""A tiny OpenID Connect provider on loopback, for single sign-on tests through real HTTP.

Discovery, an authorization endpoint that signs in whoever the test says, a token endpoint that checks the
client secret, the redirect URI and the PKCE verifier and issues an RS256 ID token (signed with joserfc, the
JOSE library Authlib itself uses), and the JWKS. `tamper` makes it misbehave the ways a forged answer would.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

Tamper = Literal["nonce", "audience", "signature", "issuer", "expired"] | None


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    challenge_method: str | None
    claims: dict[str, Any]


@dataclass
class OIDCProvider:
    client_id: str = "atende"
    client_secret: str = "segredo-do-cliente"
    issuer: str = ""
    user: dict[str, Any] = field(default_factory=dict)  # the claims of whoever "signs in" next
    tamper: Tamper = None
    grants: dict[str, Grant] = field(default_factory=dict)
    seen: list[dict[str, str]] = field(default_factory=list)  # the authorization requests, for assertions
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "chave-1"}))
    stray_key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "chave-1"}))

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        }

    def authorize(self, query: dict[str, str]) -> str:
        """Where the browser goes next: back to the client with a one-time code."""
        self.seen.append(query)
        if query.get("client_id") != self.client_id or query.get("response_type") != "code":
            return f"{query.get('redirect_uri', '')}?{urlencode({'error': 'unauthorized_client'})}"
        code = secrets.token_urlsafe(16)
        self.grants[code] = Grant(
            client_id=query["client_id"],
            redirect_uri=query["redirect_uri"],
            nonce=query.get("nonce"),
            challenge=query.get("code_challenge"),
            challenge_method=query.get("code_challenge_method"),
            claims=dict(self.user),
        )
        return f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        if authorization != "Basic " + base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode():
            return 401, {"error": "invalid_client"}
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None or form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant"}
        verifier = form.get("code_verifier", "")
        expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if grant.challenge_method != "S256" or grant.challenge != expected:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        now = int(time.time())
        claims = {
            "iss": "https://outro-emissor.example" if self.tamper == "issuer" else self.issuer,
            "aud": "outro-cliente" if self.tamper == "audience" else grant.client_id,
            "iat": now - (7200 if self.tamper == "expired" else 0),
            "exp": now + (-3600 if self.tamper == "expired" else 300),
            "nonce": "outro-nonce" if self.tamper == "nonce" else grant.nonce,
            **grant.claims,
        }
        key = self.stray_key if self.tamper == "signature" else self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "chave-1"}, claims, key)
        return 200, {
            "access_token": secrets.token_urlsafe(16),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}


def _handler(provider: OIDCProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _json(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/.well-known/openid-configuration":
                self._json(200, provider.metadata())
            elif url.path == "/jwks":
                self._json(200, provider.jwks())
            elif url.path == "/authorize":
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                self.send_response(302)
                self.send_header("Location", provider.authorize(query))
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self._json(404, {"error": "not_found"})

        def do_POST(self) -> None:
            if urlparse(self.path).path != "/token":
                self._json(404, {"error": "not_found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            status, body = provider.token(form, self.headers.get("Authorization"))
            self._json(status, body)

    return Handler


@contextmanager
def running_provider() -> Iterator[OIDCProvider]:
    provider = OIDCProvider()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(provider))
    provider.issuer = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
