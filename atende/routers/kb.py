"""Public knowledge articles as pages, so a citation links to what the assistant read."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import HTMLResponse

from atende.deps import IndexDep, SettingsDep
from atende.security_headers import policy, style_hash

router = APIRouter(tags=["knowledge"])

_STYLE = """body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;line-height:1.6;
color:#1b1b1b}a{color:#0b4f9c}header{border-bottom:1px solid #ccc;margin-bottom:1rem}
code,a{overflow-wrap:anywhere}pre{overflow-x:auto}"""
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


@router.get("/kb/{doc_id}", response_class=HTMLResponse, summary="A public knowledge article")
def article(doc_id: str, index: IndexDep, settings: SettingsDep) -> HTMLResponse:
    from markdown_it import MarkdownIt

    chunks = index.lexical.chunks_of(doc_id)
    # Internal articles are for staff; to a citizen they do not exist.
    if not chunks or chunks[0].audience != "public":
        raise HTTPException(404)
    source = Path(settings.knowledge_dir) / chunks[0].source
    if chunks[0].source.endswith(".md") and source.is_file():
        import frontmatter

        text = frontmatter.loads(source.read_text(encoding="utf-8")).content
    else:
        text = "\n\n".join(
            (f"## {c.section}\n\n" if c.section and (i == 0 or c.section != chunks[i - 1].section) else "") + c.text
            for i, c in enumerate(chunks)
        )
    body = MarkdownIt("commonmark", {"html": False}).render(text)
    if not text.lstrip().startswith("# "):
        body = f"<h1>{html.escape(chunks[0].title)}</h1>\n{body}"
    page = _PAGE.format(
        title=html.escape(chunks[0].title), org=html.escape(settings.organization_name), style=_STYLE, body=body
    )
    return HTMLResponse(page, headers={"Content-Security-Policy": _POLICY})
