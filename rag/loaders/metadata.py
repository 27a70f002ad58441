"""The metadata fields a knowledge file may declare, in front matter, `<meta>` tags or a YAML sidecar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from rag.loaders.common import LoaderError, Meta, nfc, read_utf8
from rag.types import Audience

SIDECAR_SUFFIX = ".meta.yaml"
METADATA_KEYS = frozenset({"id", "title", "audience", "team", "tags", "updated_at", "url"})


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(path: Path) -> Meta:
    try:
        data = yaml.safe_load(read_utf8(path))
    except yaml.YAMLError as exc:
        raise LoaderError(path, f"invalid YAML: {exc}") from exc
    if data is None:
        return Meta()
    if not isinstance(data, Mapping):
        raise LoaderError(path, "sidecar must be a YAML mapping")
    return meta_from_mapping(data, path)


def meta_from_mapping(data: Mapping[Any, Any], path: Path) -> Meta:
    unknown = sorted(str(k) for k in data if k not in METADATA_KEYS)
    if unknown:
        # Strict on purpose: a typo such as "audiance: internal" would otherwise publish the text.
        raise LoaderError(
            path,
            f"unknown metadata field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(METADATA_KEYS))}",
        )
    return Meta(
        id=_scalar(data.get("id"), "id", path),
        title=_scalar(data.get("title"), "title", path),
        audience=_audience(data.get("audience"), path),
        team=_scalar(data.get("team"), "team", path),
        tags=_tags(data.get("tags"), path),
        updated_at=_updated_at(data.get("updated_at"), path),
        url=_scalar(data.get("url"), "url", path),
    )


def _scalar(value: object, name: str, path: Path) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise LoaderError(path, f"{name} must be text, got {type(value).__name__}")
    return nfc(str(value)).strip() or None


def _audience(value: object, path: Path) -> Audience | None:
    text = _scalar(value, "audience", path)
    if text is None:
        return None
    lowered = text.lower()
    if lowered == "public":
        return "public"
    if lowered == "internal":
        return "internal"
    raise LoaderError(path, f"audience must be 'public' or 'internal', got {text!r}")


def _tags(value: object, path: Path) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str):
        items: Iterable[object] = value.split(",")
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise LoaderError(path, f"tags must be a list, got {type(value).__name__}")
    tags: list[str] = []
    for item in items:
        tag = _scalar(item, "each tag", path)
        if tag and tag not in tags:
            tags.append(tag)
    return tuple(tags)


def _updated_at(value: object, path: Path) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date):  # datetime is a date subclass too
        return value.isoformat()
    text = _scalar(value, "updated_at", path)
    if text is None:
        return None
    for parse in (dt.date.fromisoformat, dt.datetime.fromisoformat):
        try:
            parse(text)
        except ValueError:
            continue
        return text
    raise LoaderError(path, f"updated_at must be an ISO date such as 2024-05-31, got {text!r}")
