import json
import socket
import threading
import time

import anyio
import httpx2
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr

from assistant.testing import ScriptedChatModel
from atende.app import create_app
from atende.services import build_services
from core.settings import Settings
from domain.seed import CITIZENS, seed
from tools_mcp.testing import call

TOKEN = "tok-assistant-0123456789abcdef"
s = Settings(
    environment="test",
    data_dir="/tmp/meas/http",
    vector_store="memory",
    embedding_backend="hashing",
    mcp_tokens=SecretStr(json.dumps({TOKEN: {"name": "bot", "scopes": ["assistant"]}})),
    _env_file=None,
)
svc = build_services(s, model=ScriptedChatModel([]))
svc.warm_up(model=False)
seed(svc.domain)
sock = socket.socket()
sock.bind(("127.0.0.1", 0))
port = sock.getsockname()[1]
uv = uvicorn.Server(uvicorn.Config(create_app(services=svc, warm_model=False), log_level="warning"))
th = threading.Thread(target=uv.run, kwargs={"sockets": [sock]}, daemon=True)
th.start()


async def main():
    m = CITIZENS[0]
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as h,
        Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=h)) as c,
    ):
        await call(c, "citizen_verify", {"cpf": m.cpf, "birth_date": m.birth_date.isoformat()}, conversation="k")
        ts = []
        for _ in range(200):
            t0 = time.perf_counter()
            await call(c, "payment_list_debts", conversation="k")
            ts.append((time.perf_counter() - t0) * 1000)
        ts.sort()
        print("http payment_list_debts p50/p95 ms", round(ts[100], 2), round(ts[190], 2))
    async with Client(svc.mcp) as c:
        ts = []
        for _ in range(200):
            t0 = time.perf_counter()
            await call(c, "payment_list_debts", conversation="k")
            ts.append((time.perf_counter() - t0) * 1000)
        ts.sort()
        print("in-process payment_list_debts p50/p95 ms", round(ts[100], 2), round(ts[190], 2))


anyio.run(main)
uv.should_exit = True
th.join(10)
svc.close()
