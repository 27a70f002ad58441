"""Media a citizen sends (audio, image, document): fetched through the Graph API within type and size limits,
stored under ATENDE_DATA_DIR by content hash. Transcribing audio is a later issue; the file waits for it."""

from __future__ import annotations

import base64
import hashlib
import logging
import mimetypes
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from channels.whatsapp.graph import GraphClient, GraphError
from channels.whatsapp.payloads import MediaRef

log = logging.getLogger(__name__)

MEDIA_DIR = Path("whatsapp") / "media"


@dataclass(frozen=True, slots=True)
class MediaOutcome:
    state: str  # stored | rejected | failed
    mime_type: str | None
    file_size: int | None
    path: str | None = None  # relative to the data directory
    reason: str | None = None


def base_type(mime: str | None) -> str:
    return (mime or "").split(";", 1)[0].strip().lower()


def _checksum_matches(expected: str | None, data: bytes) -> bool:
    if not expected:
        return True
    digest = hashlib.sha256(data).digest()
    # Meta spells it in hex on the media endpoint and in base64 in webhooks.
    return expected in (digest.hex(), base64.b64encode(digest).decode())


class MediaFetcher:
    def __init__(self, graph: GraphClient, data_dir: Path, *, max_bytes: int, allowed_types: Sequence[str]) -> None:
        self._graph = graph
        self._data_dir = data_dir
        self._max_bytes = max_bytes
        self._allowed = {base_type(t) for t in allowed_types}

    def fetch(self, ref: MediaRef) -> MediaOutcome:
        """Fetch and store one media item. Retryable Graph errors propagate (the inbox row is retried);
        anything else is an outcome, so a bad file never blocks the citizen's conversation."""
        declared = base_type(ref.mime_type)
        if declared and declared not in self._allowed:
            return MediaOutcome("rejected", ref.mime_type, None, reason=f"type {declared} not accepted")
        try:
            info = self._graph.media_info(ref.media_id)
            mime = base_type(info.mime_type) or declared
            if mime not in self._allowed:
                return MediaOutcome("rejected", info.mime_type, info.file_size, reason=f"type {mime} not accepted")
            if info.file_size is not None and info.file_size > self._max_bytes:
                return MediaOutcome("rejected", info.mime_type, info.file_size, reason="too large")
            data = self._graph.download(info.url, max_bytes=self._max_bytes)
        except GraphError as exc:
            if exc.retryable:
                raise
            if exc.code == "too_large":
                return MediaOutcome("rejected", ref.mime_type, None, reason="too large")
            log.warning("media %s could not be fetched: %s", ref.media_id, exc)
            return MediaOutcome("failed", ref.mime_type, None, reason=str(exc)[:255])
        if not _checksum_matches(info.sha256 or ref.sha256, data):
            return MediaOutcome("failed", info.mime_type, len(data), reason="checksum mismatch")
        digest = hashlib.sha256(data).hexdigest()
        extension = mimetypes.guess_extension(mime) or ".bin"
        relative = MEDIA_DIR / digest[:2] / f"{digest}{extension}"
        target = self._data_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            partial = target.with_suffix(target.suffix + ".part")
            partial.write_bytes(data)
            partial.replace(target)
        return MediaOutcome("stored", info.mime_type or ref.mime_type, len(data), path=relative.as_posix())
