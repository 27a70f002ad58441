"""Benchmarks: retrieval latency at scale, answer latency and llama.cpp throughput, prefix-cache reuse.

    python -m bench.run --out bench/results.json [--skip-llm]

Speed targets live here, never in tests. Results are written as JSON with the machine they ran on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from atende.services import build_embedder, retrieval_params
from core.settings import Settings
from eval.questions import load_questions, percentile
from rag.index import KnowledgeIndex
from rag.lexical import LexicalIndex
from rag.loaders import load_directory
from rag.query_cache import QueryVectorCache, query_key
from rag.retriever import HybridRetriever
from rag.types import Chunk
from rag.vectorstores import ChromaVectorStore


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 2),
        "p95": round(percentile(values, 95), 2),
        "mean": round(statistics.fmean(values), 2),
    }


def bench_retrieval(settings: Settings, work: Path, sizes: list[int], n_queries: int) -> dict[str, Any]:
    """Scale the real knowledge base to N chunks (perturbed copies of real vectors) and time retrieval as
    configured: cold (each question's first time: its embedding included) and warm (asked again: the query
    vector comes from the cache), with the cold time's two parts."""
    embedder = build_embedder(settings)
    params = retrieval_params(settings)
    # The demo index (`atende ingest`): its vectors are reused, not recomputed.
    base_store = ChromaVectorStore(path=settings.resolved_chroma_path, collection=settings.chroma_collection)
    base = KnowledgeIndex(embedder, base_store)
    base.warm_up()
    base.sync(load_directory(settings.knowledge_dir))
    got = base_store._col.get(include=["embeddings", "documents", "metadatas"])
    real_chunks = base_store.all_chunks()
    vectors = {cid: np.asarray(v, dtype=np.float32) for cid, v in zip(got["ids"], got["embeddings"], strict=True)}
    questions = [q.question for q in load_questions() if q.doc_id][:n_queries]
    warm_up_queries = [q.question for q in load_questions() if not q.doc_id][:5]
    rng = np.random.default_rng(7)
    vocab = [w for c in real_chunks for w in c.text.split()][:5000]
    out: dict[str, Any] = {
        "embedder": embedder.model_id,
        "queries": len(questions),
        "params": {"fusion": params.fusion, "dense_weight": params.dense_weight, "candidates": params.candidates},
        "query_threads": settings.embedding_query_threads,
    }
    for size in sizes:
        path = work / f"chroma-{size}"
        shutil.rmtree(path, ignore_errors=True)
        store = ChromaVectorStore(path=path, collection=f"bench-{size}")
        store.warm_up()
        chunks: list[Chunk] = []
        embs: list[list[float]] = []
        for i in range(size):
            src = real_chunks[i % len(real_chunks)]
            copy = i // len(real_chunks)
            noise = rng.normal(0, 0.03, size=vectors[src.id].shape).astype(np.float32) if copy else 0
            v = vectors[src.id] + noise
            extra = " ".join(random.Random(i).sample(vocab, 8)) if copy else ""
            chunks.append(
                Chunk(
                    id=f"{src.doc_id}-c{copy}#{src.position}",
                    doc_id=f"{src.doc_id}-c{copy}",
                    title=src.title,
                    section=src.section,
                    text=f"{src.text} {extra}",
                    audience=src.audience,
                )
            )
            embs.append((v / np.linalg.norm(v)).tolist())
        t0 = time.perf_counter()
        store.upsert(chunks, embs)
        lexical = LexicalIndex()
        lexical.build(store.all_chunks())
        build_s = time.perf_counter() - t0
        cache = QueryVectorCache(embedder, settings.retrieval_query_cache_size)
        retriever = HybridRetriever(embedder, store, lexical, params, cache)
        for q in warm_up_queries:  # other questions than the timed ones, so the timed ones start cold
            retriever.retrieve(q, settings.retrieval_top_k)
        cold, cold_cpu, warm, embedding, search = [], [], [], [], []
        for q in questions:
            t, c = time.perf_counter(), time.process_time()
            retriever.retrieve(q, settings.retrieval_top_k)
            cold.append((time.perf_counter() - t) * 1000)
            cold_cpu.append((time.process_time() - c) * 1000)
        for q in questions:
            t = time.perf_counter()
            retriever.retrieve(q, settings.retrieval_top_k)
            warm.append((time.perf_counter() - t) * 1000)
        for q in questions:
            t = time.perf_counter()
            qv = embedder.embed_queries([query_key(q)])[0]
            embedding.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            store.query(qv, params.candidates, ("public",))
            lexical.search(q, params.candidates, ("public",))
            search.append((time.perf_counter() - t) * 1000)
        retriever.close()
        out[str(size)] = {
            "chunks": store.count(),
            "index_build_s": round(build_s, 2),
            "retrieve_cold_ms": _stats(cold),
            # CPU time of the whole process per cold retrieval: with one engine thread it is close to what the
            # wall time would be on idle cores, which a shared machine cannot show.
            "retrieve_cold_cpu_ms": _stats(cold_cpu),
            "retrieve_warm_ms": _stats(warm),
            "query_embedding_ms": _stats(embedding),
            "search_without_query_embedding_ms": _stats(search),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        print(f"retrieval @ {size}: {out[str(size)]}", flush=True)
    return out


def bench_llm(settings: Settings, n_questions: int) -> dict[str, Any]:
    from atende.services import build_services

    services = build_services(settings)
    services.warm_up()
    model = services.model
    from assistant.backends import LlamaCppChatModel
    from atende.services import assistant_alone
    from conversation.messages import InboundMessage

    assert isinstance(model, LlamaCppChatModel), "the LLM benchmark measures the embedded llama.cpp model"
    questions = [q for q in load_questions() if q.doc_id and not q.history][:n_questions]
    alone = assistant_alone(services)
    rows = []
    for q in questions:
        cid = services.store.create_conversation("bench").id
        reply = alone.handle(InboundMessage(channel="bench", conversation_id=cid, text=q.question)).reply
        assert reply is not None
        rows.append(reply)
    answered = [r for r in rows if "first_token" in r.timings_ms]
    assistant_gen = [
        (r.usage.completion_tokens - 1) / ((r.timings_ms["generate"] - r.timings_ms["first_token"]) / 1000)
        for r in answered
        if r.usage.completion_tokens and r.usage.completion_tokens > 2
    ]
    reuse = [
        1 - r.usage.prompt_tokens_evaluated / r.usage.prompt_tokens
        for r in answered
        if r.usage.prompt_tokens and r.usage.prompt_tokens_evaluated is not None
    ]
    # Raw llama.cpp on the same prompts: reset the KV cache, evaluate the prompt, then generate.
    from assistant.prompts import answer_messages

    llm, raw_prompt, raw_gen = model._llm, [], []
    assert llm is not None
    for q, r in zip(questions, rows, strict=True):
        if not r.retrieved:
            continue
        _, _, stops, tokens = model._prepare(answer_messages(settings.organization_name, q.question, r.retrieved))
        llm.reset()
        t = time.perf_counter()
        llm.eval(tokens)
        raw_prompt.append(len(tokens) / (time.perf_counter() - t))
        n, t = 0, time.perf_counter()
        first = None
        for _ in llm.create_completion(tokens, max_tokens=64, temperature=0.0, stop=stops, stream=True):
            n += 1
            if first is None:
                first = time.perf_counter()
        if first is not None and n > 2:
            raw_gen.append((n - 1) / (time.perf_counter() - first))
    llm.reset()
    return {
        "model": model.model_id,
        "threads": settings.llm_threads or os.cpu_count(),
        "questions": len(rows),
        "reached_model": len(answered),
        "time_to_first_token_ms": _stats([r.timings_ms["first_token"] for r in answered]),
        "total_ms": _stats([r.timings_ms["total"] for r in rows]),
        "raw_prompt_tokens_per_s": _stats(raw_prompt),
        "raw_generation_tokens_per_s": _stats(raw_gen),
        "assistant_generation_tokens_per_s": _stats(assistant_gen),
        "generation_speed_ratio": round(statistics.fmean(assistant_gen) / statistics.fmean(raw_gen), 3)
        if assistant_gen and raw_gen
        else None,
        "prompt_prefix_reused_share": _stats(reuse) if reuse else None,
    }


def bench_privacy() -> dict[str, Any]:
    from core.privacy import mask

    paragraph = (
        "Meu CPF é 529.982.247-25, e-mail maria@example.com, telefone (19) 99876-5432. "
        "Quero a segunda via do IPTU do imóvel da Rua das Flores, 120. "
    ) * 150
    adversarial = ["a" * 50_000, "1" * 50_000, "x." * 25_000 + "@", "4111 " * 4_000, "RG " * 10_000]
    t = time.perf_counter()
    for _ in range(20):
        mask(paragraph)
    per_call = (time.perf_counter() - t) / 20
    worst = 0.0
    for text in adversarial:
        t = time.perf_counter()
        mask(text)
        worst = max(worst, time.perf_counter() - t)
    return {
        "mask_ms_per_20kb": round(per_call * 1000 * 20_000 / len(paragraph), 2),
        "worst_adversarial_50kb_ms": round(worst * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("bench/results.json"))
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--queries", type=int, default=60)
    parser.add_argument("--llm-questions", type=int, default=20)
    parser.add_argument("--skip-llm", action="store_true")
    parser.add_argument("--skip-webhook", action="store_true")
    args = parser.parse_args()
    settings = Settings(environment="development")  # a measurement, never a deployment
    work = settings.data_dir / "bench"
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        # Retrieval: the cold path (a question's first time, its embedding included) at 10k chunks.
        "targets": {"retrieval_p95_ms_at_10k": 30, "generation_speed_ratio_min": 0.9},
    }
    results["privacy"] = bench_privacy()
    results["retrieval"] = bench_retrieval(settings, work, [int(s) for s in args.sizes.split(",")], args.queries)
    if not args.skip_webhook:  # WhatsApp webhook acknowledgement (bench/webhook.py)
        from bench.webhook import bench_webhook

        results["webhook"] = bench_webhook(work)
    if not args.skip_llm:
        results["llm"] = bench_llm(settings, args.llm_questions)
    elif args.out.is_file():  # keep the last LLM measurement when only retrieval was re-run
        previous = json.loads(args.out.read_text())
        if "llm" in previous:
            results["llm"] = previous["llm"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
