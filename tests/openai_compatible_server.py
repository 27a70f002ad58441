"""A minimal OpenAI-compatible chat-completions server over any ChatModel, for tests on loopback.

It exercises the real `openai` client over real HTTP (streaming SSE included) without a hosted API.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

from assistant.llm import ChatModel, complete


def build_app(model: ChatModel) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Any:
        body = await request.json()
        messages = body["messages"]
        if body.get("response_format", {}).get("type") == "json_schema":
            schema = body["response_format"]["json_schema"]["schema"]
            c = model.complete_json(messages, schema=schema, max_tokens=body.get("max_tokens", 64))
            return JSONResponse(_completion(body["model"], c.text))
        if not body.get("stream"):
            c = complete(model, messages, max_tokens=body.get("max_tokens", 64))
            return JSONResponse(_completion(body["model"], c.text))

        def events() -> Iterator[str]:
            n = 0
            for chunk in model.stream(messages, max_tokens=body.get("max_tokens", 64)):
                if chunk.text:
                    n += 1
                    yield "data: " + json.dumps(_chunk(body["model"], {"content": chunk.text})) + "\n\n"
            done = _chunk(body["model"], {}, finish="stop")
            yield "data: " + json.dumps(done) + "\n\n"
            usage = {**_chunk(body["model"], None), "choices": []}
            usage["usage"] = {"prompt_tokens": 10, "completion_tokens": n, "total_tokens": 10 + n}
            yield "data: " + json.dumps(usage) + "\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


def _completion(model: str, text: str) -> dict[str, Any]:
    return {
        "id": "cmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": len(text.split()), "total_tokens": 10},
    }


def _chunk(model: str, delta: dict[str, Any] | None, finish: str | None = None) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "cmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }


class LoopbackServer:
    """Runs an ASGI app with uvicorn on 127.0.0.1 in a background thread."""

    def __init__(self, app: FastAPI) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("loopback server did not start")
            self._thread.join(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
