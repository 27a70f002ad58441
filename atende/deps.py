"""FastAPI dependencies, as Annotated aliases so routes declare what they need in one word."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from assistant.service import Assistant
from atende.services import Services
from atende.settings import Settings
from atende.store import ConversationStore
from rag.index import KnowledgeIndex


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def get_assistant(request: Request) -> Assistant:
    return get_services(request).assistant


def get_store(request: Request) -> ConversationStore:
    return get_services(request).store


def get_index(request: Request) -> KnowledgeIndex:
    return get_services(request).index


def get_app_settings(request: Request) -> Settings:
    return get_services(request).settings


ServicesDep = Annotated[Services, Depends(get_services)]
AssistantDep = Annotated[Assistant, Depends(get_assistant)]
StoreDep = Annotated[ConversationStore, Depends(get_store)]
IndexDep = Annotated[KnowledgeIndex, Depends(get_index)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
