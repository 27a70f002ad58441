"""One conformance suite for every ChatModel: the scripted fake, an OpenAI-compatible endpoint, llama.cpp."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from openai_compatible_server import LoopbackServer, build_app

from assistant.backends import LlamaCppChatModel, OpenAICompatibleChatModel
from assistant.llm import ChatMessage, ChatModel, LLMError, complete
from assistant.testing import PermissiveChatModel, ScriptedChatModel

HELLO: list[ChatMessage] = [
    {"role": "system", "content": "Responda em português, em uma frase curta."},
    {"role": "user", "content": "Diga olá para a cidadã Maria."},
]
SCHEMA = {
    "type": "object",
    "properties": {"intent": {"type": "string", "enum": ["iptu", "saude", "outro"]}},
    "required": ["intent"],
}


def scripted_replies() -> ScriptedChatModel:
    def reply(messages: list[ChatMessage]) -> str:
        if "intent" in messages[-1]["content"] or "JSON" in messages[0]["content"]:
            return json.dumps({"intent": "iptu"})
        return "Olá, Maria! Como posso ajudar?"

    # The scripted model is the subject here (or the endpoint's stand-in for a whole module), not a script of one
    # test's calls: each test calls it as often as it checks, so the steps are a budget.
    return ScriptedChatModel([reply] * 10, exact=False)


@pytest.fixture(scope="module")
def openai_endpoint() -> Iterator[str]:
    with LoopbackServer(build_app(scripted_replies())) as server:
        yield server.url + "/v1"


@pytest.fixture(
    params=[
        "scripted",
        "permissive",
        pytest.param("openai-compatible", marks=pytest.mark.integration),
        pytest.param("llamacpp", marks=[pytest.mark.llm, pytest.mark.slow]),
    ]
)
def chat_model(request: pytest.FixtureRequest) -> ChatModel:
    if request.param == "scripted":
        return scripted_replies()
    if request.param == "permissive":
        return PermissiveChatModel()
    if request.param == "openai-compatible":
        url = request.getfixturevalue("openai_endpoint")
        return OpenAICompatibleChatModel(base_url=url, api_key="test-key", model="test-model", timeout_s=10)
    return request.getfixturevalue("llamacpp_model")  # type: ignore[no-any-return]


def test_a_model_streams_text_and_ends_with_usage(chat_model: ChatModel) -> None:
    chat_model.warm_up()
    chunks = list(chat_model.stream(HELLO, max_tokens=40))

    text = "".join(c.text for c in chunks)
    assert text.strip()
    assert chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])


def test_complete_collects_the_stream_into_one_text(chat_model: ChatModel) -> None:
    streamed = "".join(c.text for c in chat_model.stream(HELLO, max_tokens=40))
    collected = complete(chat_model, HELLO, max_tokens=40)

    if not isinstance(chat_model, ScriptedChatModel):  # a fresh script step answers the same
        assert collected.text == streamed
    assert collected.text


def test_json_output_follows_the_schema(chat_model: ChatModel) -> None:
    messages: list[ChatMessage] = [
        {"role": "system", "content": 'Classifique a mensagem e responda só com JSON: {"intent": ...}.'},
        {"role": "user", "content": "Quero a segunda via do IPTU (intent)."},
    ]

    out = chat_model.complete_json(messages, schema=SCHEMA, max_tokens=30)

    assert json.loads(out.text)["intent"] in {"iptu", "saude", "outro"}


def test_an_unreachable_endpoint_raises_llm_error() -> None:
    model = OpenAICompatibleChatModel(base_url="http://127.0.0.1:9/v1", api_key="x", model="m", timeout_s=2)

    with pytest.raises(LLMError):
        complete(model, HELLO, max_tokens=5)


def test_a_missing_model_file_raises_llm_error(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    model = LlamaCppChatModel(Path(str(tmp_path)) / "nope.gguf")

    with pytest.raises(LLMError, match="not found"):
        model.warm_up()


@pytest.mark.llm
def test_llamacpp_reuses_the_cached_prompt_prefix_across_calls(llamacpp_model: LlamaCppChatModel) -> None:
    system: ChatMessage = {"role": "system", "content": "Você é um assistente da prefeitura. " * 20}
    first = complete(llamacpp_model, [system, {"role": "user", "content": "Oi, tudo bem?"}], max_tokens=8)
    second = complete(llamacpp_model, [system, {"role": "user", "content": "Qual o horário?"}], max_tokens=8)

    assert first.usage.prompt_tokens is not None
    assert second.usage.prompt_tokens_evaluated is not None
    # Only the new user turn is evaluated; the long system prefix comes from the KV cache.
    assert second.usage.prompt_tokens_evaluated < second.usage.prompt_tokens / 2


@pytest.mark.llm
def test_llamacpp_stops_a_generation_that_exceeds_its_timeout(llamacpp_path: Callable[[], object]) -> None:
    from pathlib import Path

    model = LlamaCppChatModel(Path(str(llamacpp_path())), n_ctx=1024, timeout_s=0.0)

    with pytest.raises(LLMError, match="exceeded"):
        complete(model, HELLO, max_tokens=40)
