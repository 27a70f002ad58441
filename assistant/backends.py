"""Production ChatModel backends: embedded llama.cpp and any OpenAI-compatible endpoint."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.llm import ChatMessage, Completion, LLMError, StreamChunk, ToolCall, ToolDefinition, Usage

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger(__name__)


class LlamaCppChatModel:
    """A GGUF model run in-process by llama.cpp.

    The prompt is formatted with the model's own chat template so we can count tokens and see how much of
    the prompt llama.cpp reuses from its KV cache: prompts share a fixed system prefix, and llama.cpp only
    evaluates the tokens after the longest common prefix with the previous call.
    """

    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int = 4096,
        n_threads: int = 0,
        timeout_s: float = 60.0,
        repeat_penalty: float = 1.1,
    ) -> None:
        self._path = model_path
        self._n_ctx = n_ctx
        self._n_threads = n_threads
        self._timeout_s = timeout_s
        self._repeat_penalty = repeat_penalty
        self._llm: Llama | None = None
        self._formatter: Any = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._path.stem

    @property
    def path(self) -> Path:
        return self._path

    def warm_up(self) -> None:
        if self._llm is not None:
            return
        if not self._path.is_file():
            raise LLMError(f"model file not found: {self._path} (run `atende model assemble`)")
        import os

        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        threads = self._n_threads or os.cpu_count() or 1
        llm = Llama(
            model_path=str(self._path),
            n_ctx=self._n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            n_batch=512,
            verbose=False,
        )
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise LLMError(f"{self._path.name} has no chat template in its metadata")
        eos = llm.detokenize([llm.token_eos()], special=True).decode("utf-8", "ignore")
        bos = llm.detokenize([llm.token_bos()], special=True).decode("utf-8", "ignore") if llm.token_bos() >= 0 else ""
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        self._llm = llm

    def _prepare(self, messages: Sequence[ChatMessage]) -> tuple[Llama, str, list[str], list[int]]:
        self.warm_up()
        assert self._llm is not None
        formatted = self._formatter(messages=[dict(m) for m in messages])
        prompt: str = formatted.prompt
        raw_stops = [formatted.stop] if isinstance(formatted.stop, str) else list(formatted.stop or [])
        # An empty stop string would end generation at once.
        stops = [s for s in raw_stops if s]
        tokens = self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        if len(tokens) >= self._n_ctx:
            raise LLMError(f"prompt of {len(tokens)} tokens does not fit the {self._n_ctx}-token context")
        return self._llm, prompt, stops, tokens

    @staticmethod
    def _reused_prefix(llm: Llama, tokens: list[int]) -> int:
        # llama.cpp keeps the previous call's tokens in its KV cache and skips the common prefix.
        previous = llm._input_ids.tolist()
        n = 0
        for a, b in zip(previous, tokens, strict=False):
            if a != b:
                break
            n += 1
        # llama.cpp always re-evaluates at least the last prompt token to get fresh logits.
        return min(n, len(tokens) - 1)

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Iterator[StreamChunk]:
        with self._lock:
            llm, _prompt, stops, tokens = self._prepare(messages)
            reused = self._reused_prefix(llm, tokens)
            started = time.monotonic()
            generated = 0
            try:
                for part in llm.create_completion(
                    tokens,
                    max_tokens=max_tokens,
                    temperature=temperature,
                    repeat_penalty=self._repeat_penalty,
                    stop=[*stops, *stop],
                    stream=True,
                ):
                    text: str = part["choices"][0]["text"]  # type: ignore[index]
                    generated += 1
                    if text:
                        yield StreamChunk(text=text)
                    if time.monotonic() - started > self._timeout_s:
                        raise LLMError(f"generation exceeded {self._timeout_s:.0f}s")
            except LLMError:
                raise
            except Exception as exc:  # llama.cpp raises bare RuntimeErrors and ValueErrors
                raise LLMError(f"llama.cpp failed: {exc}") from exc
            yield StreamChunk(usage=Usage(len(tokens), generated, len(tokens) - reused))

    def complete_json(
        self, messages: Sequence[ChatMessage], *, schema: Mapping[str, Any], max_tokens: int
    ) -> Completion:
        from llama_cpp.llama_grammar import LlamaGrammar

        with self._lock:
            llm, _prompt, stops, tokens = self._prepare(messages)
            reused = self._reused_prefix(llm, tokens)
            grammar = LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
            try:
                out = llm.create_completion(tokens, max_tokens=max_tokens, temperature=0.0, grammar=grammar, stop=stops)
            except Exception as exc:
                raise LLMError(f"llama.cpp failed: {exc}") from exc
            assert isinstance(out, dict)
            usage = out.get("usage", {})
            return Completion(
                out["choices"][0]["text"],
                Usage(len(tokens), usage.get("completion_tokens"), len(tokens) - reused),
            )


class OpenAICompatibleChatModel:
    """Any endpoint speaking the OpenAI chat-completions API: vLLM, Ollama, llama.cpp server, hosted APIs."""

    def __init__(self, *, base_url: str, api_key: str, model: str, timeout_s: float = 60.0) -> None:
        self._base_url = base_url
        self._api_key = api_key or "not-needed"
        self._model = model
        self._timeout_s = timeout_s
        self._client: Any = None

    @property
    def model_id(self) -> str:
        return self._model

    def warm_up(self) -> None:
        if self._client is None:
            from openai import OpenAI

            self._client = OpenAI(
                base_url=self._base_url, api_key=self._api_key, timeout=self._timeout_s, max_retries=1
            )

    def stream(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int,
        temperature: float = 0.0,
        stop: Sequence[str] = (),
    ) -> Iterator[StreamChunk]:
        import openai

        self.warm_up()
        usage = Usage()
        try:
            response = self._client.chat.completions.create(
                model=self._model,
                messages=list(messages),
                max_tokens=max_tokens,
                temperature=temperature,
                stop=list(stop) or None,
                stream=True,
                stream_options={"include_usage": True},
            )
            for event in response:
                if event.usage is not None:
                    usage = Usage(event.usage.prompt_tokens, event.usage.completion_tokens, None)
                for choice in event.choices:
                    if choice.delta.content:
                        yield StreamChunk(text=choice.delta.content)
        except openai.OpenAIError as exc:
            raise LLMError(f"{type(exc).__name__}: {exc}") from exc
        yield StreamChunk(usage=usage)

    def complete_json(
        self, messages: Sequence[ChatMessage], *, schema: Mapping[str, Any], max_tokens: int
    ) -> Completion:
        import openai

        self.warm_up()
        try:
            response = self._client.chat.completions.create(
                model=self._model,
                messages=list(messages),
                max_tokens=max_tokens,
                temperature=0.0,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "output", "schema": dict(schema), "strict": True},
                },
            )
        except openai.OpenAIError as exc:
            raise LLMError(f"{type(exc).__name__}: {exc}") from exc
        u = response.usage
        return Completion(
            response.choices[0].message.content or "",
            Usage(u.prompt_tokens if u else None, u.completion_tokens if u else None, None),
        )

    @property
    def native_tool_calls(self) -> bool:
        return True

    def choose_tool(
        self, messages: Sequence[ChatMessage], *, tools: Sequence[ToolDefinition], max_tokens: int
    ) -> tuple[ToolCall | None, Usage]:
        """OpenAI tool calling: the endpoint picks a function (or none) and fills its arguments."""
        import openai

        self.warm_up()
        try:
            response = self._client.chat.completions.create(
                model=self._model,
                messages=list(messages),
                max_tokens=max_tokens,
                temperature=0.0,
                tools=[
                    {
                        "type": "function",
                        "function": {"name": t.name, "description": t.description, "parameters": dict(t.parameters)},
                    }
                    for t in tools
                ],
                tool_choice="auto",
            )
        except openai.OpenAIError as exc:
            raise LLMError(f"{type(exc).__name__}: {exc}") from exc
        u = response.usage
        usage = Usage(u.prompt_tokens if u else None, u.completion_tokens if u else None, None)
        calls = response.choices[0].message.tool_calls or []
        if not calls:
            return None, usage
        function = calls[0].function
        try:
            arguments = json.loads(function.arguments or "{}")
        except json.JSONDecodeError as exc:
            raise LLMError(f"tool arguments are not JSON: {function.arguments!r}") from exc
        return ToolCall(function.name, arguments if isinstance(arguments, dict) else {}), usage
