# Probe script kept for reproducibility of docs/decisions/0002 (run with PYTHONPATH=docs/decisions/data).
"""Compare answer prompt variants on a sample of the suite (raw model output + grounding check)."""

import json
import random
import sys
import time
from pathlib import Path

from assistant import prompts
from assistant.grounding import check_answer
from assistant.llm import complete
from assistant.rewrite import rewrite_query
from atende.services import build_services
from core.privacy import mask
from core.settings import Settings
from eval.questions import answer_contains, load_questions
from rag.retriever import confidence

name = sys.argv[1]
variant_names = sys.argv[2].split(",")
n = int(sys.argv[3])
s = Settings(llm_model=name, data_dir=Path("var"))
svc = build_services(s)
svc.warm_up()
qs = [q for q in load_questions() if "smalltalk" not in q.tags and not q.history]
random.Random(7).shuffle(qs)
ans = [q for q in qs if q.doc_id][:n]
un = []
for q in qs:
    if not q.doc_id:
        hits = svc.index.retrieve(mask(q.question), 4)
        if confidence(hits[0], svc.index.retriever.params) >= s.abstain_threshold:
            un.append(q)
un = un[: max(4, n // 3)]
import importlib

exp = importlib.import_module("prompt_variants")
for v in variant_names:
    build = getattr(exp, v)
    stats = dict(ans_ok=0, ans_fact=0, ans_right=0, un_declined=0, t=0.0, tokens=0)
    for q in ans + un:
        hits = svc.index.retrieve(mask(q.question), s.retrieval_top_k)
        msgs = build(s.organization_name, q.question, hits)
        t = time.time()
        c = complete(svc.model, msgs, max_tokens=160)
        el = time.time() - t
        stats["t"] += el
        stats["tokens"] += c.usage.completion_tokens or 0
        chk = check_answer(c.text, hits, question=q.question)
        if q.doc_id:
            stats["ans_ok"] += chk.supported
            stats["ans_fact"] += chk.supported and answer_contains(chk.answer, q.expect)
            stats["ans_right"] += chk.supported and q.doc_id in [hits[i - 1].chunk.doc_id for i in chk.cited]
        else:
            stats["un_declined"] += not chk.supported
        print(
            v,
            q.id,
            bool(q.doc_id),
            chk.supported,
            chk.reason[:40],
            f"{el:.1f}s",
            "|",
            c.text[:160].replace("\n", " "),
            flush=True,
        )
    print(
        "SUMMARY",
        name,
        v,
        {k: (round(x, 1) if isinstance(x, float) else x) for k, x in stats.items()},
        "n_ans",
        len(ans),
        "n_un",
        len(un),
        flush=True,
    )
