"""Throwaway services for evaluation: a temporary data directory, SQLite database and in-memory index.

Evaluation never opens the configured database, Chroma directory or Redis: a suite's conversations,
seeded citizens and tool side effects vanish with the temporary directory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from assistant.llm import ChatModel
from atende.services import Services, build_services
from core.settings import Settings
from rag.types import Document


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
    *,
    model: ChatModel | None = None,
    knowledge_dir: Path | None = None,
    documents: Sequence[Document] | None = None,
    load_model: bool = True,
) -> Iterator[Services]:
    """Services over a fresh temporary database and index holding `documents` (default: the knowledge folder)."""
    from rag.loaders import load_directory

    with tempfile.TemporaryDirectory(prefix="atende-eval-") as tmp:
        iso = isolated_settings(settings, Path(tmp), knowledge_dir)
        services = build_services(iso, model=model)
        try:
            services.warm_up(model=load_model)
            services.index.sync(list(documents) if documents is not None else load_directory(iso.knowledge_dir))
            yield services
        finally:
            services.close()
