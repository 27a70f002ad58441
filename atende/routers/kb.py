"""Public knowledge articles as pages, so a citation links to what the assistant read, marked where it read it."""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse

from atende.deps import IndexDep, SettingsDep
from channels.kb_links import article_parser, keys_from_query, mark_passages
from core.i18n import t
from core.security_headers import policy, style_hash

router = APIRouter(tags=["knowledge"])

_STYLE = """body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.6;
color:#1b1b1b}a{color:#0b4f9c}header{border-bottom:1px solid #ccc;margin-bottom:1rem}
code,a{overflow-wrap:anywhere}pre{overflow-x:auto}.updated{color:#555;font-size:.9rem}
table{border-collapse:collapse;display:block;overflow-x:auto}th,td{border:1px solid #ccc;padding:.25rem .5rem}
mark{background:#fff0a0;color:inherit}.trecho{scroll-margin-top:1.5rem}
li.trecho::marker{color:#8a5a00;font-weight:bold}tr.trecho td,tr.trecho th{background:#fff8cc}"""
# The page stands alone (the web chat's /static may not be installed), so its one fixed style stays inline and
# the policy allows exactly that text by its hash.
_POLICY = policy(style_sources=[style_hash(_STYLE)])

_PAGE = """<!doctype html>
<html lang="pt-BR"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — {org}</title>
<style>{style}</style>
</head><body><header><p><a href="/">{org} — Atendimento</a></p></header>
<main><article>{body}</article></main></body></html>"""


def _updated(value: Any) -> str:
    """The article's "updated on" line, or "" when its date is missing or not a date."""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            return ""
    if not isinstance(value, dt.date):
        return ""
    return f'<p class="updated">{html.escape(t("kb.updated", date=value.strftime("%d/%m/%Y")))}</p>'


@router.get("/kb/{doc_id}", response_class=HTMLResponse, summary="A public knowledge article")
def article(
    doc_id: str,
    index: IndexDep,
    settings: SettingsDep,
    trecho: Annotated[
        list[str] | None,
        Query(description="Passages to mark: the first words of each, hyphen-joined (see channels/kb_links.py)."),
    ] = None,
) -> HTMLResponse:
    chunks = index.lexical.chunks_of(doc_id)
    # Internal articles are for staff; to a citizen they do not exist.
    if not chunks or chunks[0].audience != "public":
        raise HTTPException(404)
    source = Path(settings.knowledge_dir) / chunks[0].source
    updated = ""
    if chunks[0].source.endswith(".md") and source.is_file():
        import frontmatter

        post = frontmatter.loads(source.read_text(encoding="utf-8"))
        text = post.content
        updated = _updated(post.metadata.get("updated_at"))
    else:
        text = "\n\n".join(
            (f"## {c.section}\n\n" if c.section and (i == 0 or c.section != chunks[i - 1].section) else "") + c.text
            for i, c in enumerate(chunks)
        )
    md = article_parser()
    env: dict[str, Any] = {}
    tokens = md.parse(text, env)
    # Only the words of the request are compared with the article; nothing of it is written into the page.
    mark_passages(tokens, keys_from_query(trecho or []))
    body = md.renderer.render(tokens, md.options, env)
    if not text.lstrip().startswith("# "):
        body = f"<h1>{html.escape(chunks[0].title)}</h1>\n{body}"
    if updated:
        body = body.replace("</h1>", "</h1>\n" + updated, 1)
    page = _PAGE.format(
        title=html.escape(chunks[0].title), org=html.escape(settings.organization_name), style=_STYLE, body=body
    )
    return HTMLResponse(page, headers={"Content-Security-Policy": _POLICY})
