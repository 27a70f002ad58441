"""The Graph API calls the channel makes: send a message, look up a media item, download it.

A thin httpx client (docs/decisions/0023-graph-api-client.md): the outbox owns retries, so the client only
has to say whether a failure is worth retrying and how long Meta asked us to wait.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol
from urllib.parse import urlsplit

import httpx

from core.settings import WHATSAPP_MEDIA_HOSTS

log = logging.getLogger(__name__)

# Graph error codes that mean "too much, later" even when the HTTP status is 400.
RETRYABLE_CODES: Final = frozenset({4, 80007, 130429, 131000, 131016, 131056, 133004})
DEFAULT_MEDIA_HOSTS: Final = WHATSAPP_MEDIA_HOSTS


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    return parts.scheme.lower(), (parts.hostname or "").lower().rstrip("."), port


class MediaHostPolicy:
    """Which media URLs may receive the Graph bearer token: https on an allowed host (or a subdomain of one), or
    exactly the Graph API's own origin, which gets the token anyway (a fake Graph API on http in tests)."""

    def __init__(self, graph_url: str, hosts: Sequence[str] = DEFAULT_MEDIA_HOSTS) -> None:
        self._graph = _origin(graph_url)
        self._hosts = tuple(h.strip().lower().strip(".") for h in hosts if h.strip().strip("."))

    def allows(self, url: str) -> bool:
        origin = _origin(url)
        scheme, host, _ = origin
        if not host:
            return False
        if origin == self._graph:
            return True
        if scheme != "https":
            return False
        return any(host == allowed or host.endswith("." + allowed) for allowed in self._hosts)


class GraphError(Exception):
    """A failed Graph API call: `retryable` for 429, 5xx, throttling codes and network errors."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        title: str | None = None,
        retryable: bool = False,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.title = title
        self.retryable = retryable
        self.retry_after_s = retry_after_s


@dataclass(frozen=True, slots=True)
class MediaInfo:
    url: str
    mime_type: str | None
    file_size: int | None
    sha256: str | None


class GraphClient(Protocol):
    def send(
        self, phone_number_id: str, recipient: Mapping[str, str], body: Mapping[str, Any], *, opaque: str | None
    ) -> str:
        """Send one message; returns its WhatsApp message id (wamid)."""
        ...

    def media_info(self, media_id: str) -> MediaInfo: ...

    def download(self, url: str, *, max_bytes: int) -> bytes:
        """The media bytes; raises GraphError when they pass `max_bytes` (without reading the rest), or when the
        URL is not on an allowed media host (without sending anything there)."""
        ...

    def close(self) -> None: ...


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _error(response: httpx.Response) -> GraphError:
    try:
        error = response.json().get("error") or {}
    except ValueError:
        error = {}
    code = error.get("code")
    # 401: an expired token is fixed by an operator, and the messages should still go out afterwards.
    retryable = response.status_code in (401, 429) or response.status_code >= 500 or code in RETRYABLE_CODES
    return GraphError(
        f"Graph API answered {response.status_code}: {error.get('message') or response.reason_phrase}",
        status=response.status_code,
        code=str(code if code is not None else response.status_code),
        title=error.get("error_user_title") or error.get("message") or response.reason_phrase,
        retryable=retryable,
        retry_after_s=_retry_after(response),
    )


class HttpxGraphClient:
    """The Cloud API over one pooled httpx client; the base URL comes from ATENDE_WHATSAPP_GRAPH_URL."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        timeout_s: float = 15.0,
        media_hosts: Sequence[str] = DEFAULT_MEDIA_HOSTS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._media_hosts = MediaHostPolicy(base_url, media_hosts)
        self._client = httpx.Client(
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout_s, connect=5.0),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            transport=transport,  # None: the network; tests pass an httpx.MockTransport
        )

    def _request(self, method: str, url: str, **kw: Any) -> httpx.Response:
        try:
            response = self._client.request(method, url, **kw)
        except httpx.TransportError as exc:  # timeouts, refused connections, resets
            raise GraphError(f"Graph API unreachable: {exc!r}", code="network", retryable=True) from exc
        if response.status_code >= 400:
            raise _error(response)
        return response

    def send(
        self, phone_number_id: str, recipient: Mapping[str, str], body: Mapping[str, Any], *, opaque: str | None
    ) -> str:
        payload: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", **recipient}
        payload.update(body)
        if opaque:
            payload["biz_opaque_callback_data"] = opaque
        response = self._request("POST", f"{self._base}/{phone_number_id}/messages", json=payload)
        try:
            return str(response.json()["messages"][0]["id"])
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise GraphError("Graph API accepted the message without an id", retryable=False, code="no_id") from exc

    def media_info(self, media_id: str) -> MediaInfo:
        data = self._request("GET", f"{self._base}/{media_id}").json()
        size = data.get("file_size")
        return MediaInfo(
            url=str(data["url"]),
            mime_type=data.get("mime_type"),
            file_size=int(size) if size is not None else None,
            sha256=data.get("sha256"),
        )

    def download(self, url: str, *, max_bytes: int) -> bytes:
        if not self._media_hosts.allows(url):
            # The client sends the bearer token with every request: a media URL elsewhere would receive it.
            host = urlsplit(url).hostname or "?"
            log.warning("media URL on %s refused: not an allowed media host (ATENDE_WHATSAPP_MEDIA_HOSTS)", host)
            raise GraphError(f"media host {host} is not allowed", code="media_host_refused")
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response)
                declared = response.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                    raise GraphError(f"media of {declared} bytes passes the limit", code="too_large")
                data = bytearray()
                for chunk in response.iter_bytes():
                    data.extend(chunk)
                    if len(data) > max_bytes:
                        raise GraphError("media passes the size limit", code="too_large")
                return bytes(data)
        except httpx.TransportError as exc:
            raise GraphError(f"media download failed: {exc!r}", code="network", retryable=True) from exc

    def close(self) -> None:
        self._client.close()
