"""Markdown files: the text as written, metadata from YAML front matter."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import yaml
from frontmatter.default_handlers import YAMLHandler

from rag.loaders.common import LoaderError, Parsed, collapse, read_utf8
from rag.loaders.metadata import meta_from_mapping
from rag.markdown_text import inline_text, markdown_parser

_MD = markdown_parser()


_FRONT_MATTER = YAMLHandler()


def parse_markdown(path: Path) -> Parsed:
    text = read_utf8(path).strip()
    data: object = None
    if _FRONT_MATTER.detect(text):
        try:
            header, text = _FRONT_MATTER.split(text)
            data = _FRONT_MATTER.load(header)
        except ValueError as exc:
            raise LoaderError(path, "front matter opened with '---' but never closed") from exc
        except yaml.YAMLError as exc:
            raise LoaderError(path, f"invalid YAML front matter: {exc}") from exc
    if data is not None and not isinstance(data, Mapping):
        # python-frontmatter would ignore it, silently turning e.g. "audience internal" into public.
        raise LoaderError(path, "front matter must be a YAML mapping of field: value")
    meta = meta_from_mapping(data or {}, path)
    return Parsed(text=text, title=_first_h1(text), meta=meta)


def _first_h1(markdown: str) -> str | None:
    tokens = _MD.parse(markdown)
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h1":
            title = collapse(inline_text(tokens[i + 1].children))
            if title:
                return title
    return None
