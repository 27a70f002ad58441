"""A folder of knowledge files into `Document`s, every problem reported rather than the first one only."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from rag.loaders.common import LoaderError
from rag.loaders.document import PARSERS, load_document
from rag.loaders.metadata import SIDECAR_SUFFIX
from rag.types import Document


@dataclass(frozen=True)
class LoadReport:
    """Outcome of loading a directory without stopping at the first bad file."""

    documents: list[Document]
    errors: list[LoaderError]
    skipped: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def collect_directory(root: Path) -> LoadReport:
    """Load every knowledge file under `root`, collecting problems instead of raising.

    Files are visited in sorted order; hidden files and folders, Office lock files (`~$…`) and the
    top-level README.md are skipped. Of two files sharing an id, the first one is kept.
    """
    root = Path(root)
    if not root.is_dir():
        return LoadReport([], [LoaderError(root, "not a directory")])
    documents: list[Document] = []
    errors: list[LoaderError] = []
    skipped: list[Path] = []
    owner: dict[str, str] = {}
    candidates: set[Path] = set()
    paths = _walk(root)
    for path in paths:
        if path.name.lower().endswith(SIDECAR_SUFFIX):
            continue
        if path.suffix.lower() not in PARSERS:
            skipped.append(path)
            continue
        candidates.add(path)
        try:
            doc = load_document(path, root)
        except LoaderError as exc:
            errors.append(exc)
            continue
        if doc.id in owner:
            errors.append(LoaderError(path, f"duplicate id {doc.id!r}: already used by {owner[doc.id]}"))
            continue
        owner[doc.id] = doc.source
        documents.append(doc)
    for path in paths:
        name = path.name
        if name.lower().endswith(SIDECAR_SUFFIX):
            target = path.with_name(name[: -len(SIDECAR_SUFFIX)])
            if target not in candidates:
                # A sidecar left behind by a rename would silently drop e.g. `audience: internal`.
                errors.append(LoaderError(path, f"sidecar has no matching knowledge file {target.name!r}"))
    return LoadReport(documents, errors, skipped)


def load_directory(root: Path) -> list[Document]:
    """Load every knowledge file under `root`; raise the first LoaderError if any file is bad."""
    report = collect_directory(root)
    if report.errors:
        first = report.errors[0]
        if len(report.errors) > 1:
            first.add_note(f"{len(report.errors) - 1} more problem(s); collect_directory() lists them all")
        raise first
    return report.documents


def _walk(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        here = Path(dirpath)
        for name in filenames:
            if name.startswith((".", "~$")):
                continue
            if here == root and name.lower() == "readme.md":
                continue
            found.append(here / name)
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())
