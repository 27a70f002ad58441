"""Throwaway services for evaluation: a temporary data directory, SQLite database and in-memory index.

Evaluation never opens the configured database, Chroma directory or Redis: a suite's conversations,
seeded citizens and tool side effects vanish with the temporary directory.

The harness measures the assembled application without assembling it: whoever runs it (`atende eval`, the
tests, the benches) hands over the application shell's `build_services`.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from assistant.llm import ChatModel
from core.settings import Settings
from rag.types import Document

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from assistant.service import Assistant
    from conversation.service import ConversationService
    from core.store import ConversationStore
    from domain.wiring import Domain
    from rag.index import KnowledgeIndex


class EvalServices(Protocol):
    """The assembled application as the harness drives it (the shell's `atende.services.Services` is one)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def engine(self) -> Engine: ...

    @property
    def store(self) -> ConversationStore: ...

    @property
    def index(self) -> KnowledgeIndex: ...

    @property
    def model(self) -> ChatModel: ...

    @property
    def assistant(self) -> Assistant: ...

    @property
    def domain(self) -> Domain | None: ...

    @property
    def conversations(self) -> ConversationService: ...

    def warm_up(self, *, model: bool = True) -> None: ...

    def close(self) -> None: ...


class BuildServices(Protocol):
    """Assembles the application from settings (`atende.services.build_services`)."""

    def __call__(self, settings: Settings, *, model: ChatModel | None = None) -> EvalServices: ...


def isolated_settings(settings: Settings, workdir: Path, knowledge_dir: Path | None = None) -> Settings:
    # The model file is the one thing read from the real data directory; pin it before moving data_dir.
    return settings.model_copy(
        update={
            "data_dir": workdir,
            "database_url": "",
            "redis_url": None,
            "vector_store": "memory",
            "chroma_path": None,
            "llm_model_path": settings.resolved_llm_model_path.resolve(),
            "knowledge_dir": knowledge_dir or settings.knowledge_dir,
        }
    )


@contextmanager
def isolated_services(
    settings: Settings,
    build: BuildServices,
    *,
    model: ChatModel | None = None,
    knowledge_dir: Path | None = None,
    documents: Sequence[Document] | None = None,
    load_model: bool = True,
) -> Iterator[EvalServices]:
    """Services over a fresh temporary database and index holding `documents` (default: the knowledge folder)."""
    from rag.loaders import load_directory

    with tempfile.TemporaryDirectory(prefix="atende-eval-") as tmp:
        iso = isolated_settings(settings, Path(tmp), knowledge_dir)
        services = build(iso, model=model)
        try:
            services.warm_up(model=load_model)
            services.index.sync(list(documents) if documents is not None else load_directory(iso.knowledge_dir))
            yield services
        finally:
            services.close()
