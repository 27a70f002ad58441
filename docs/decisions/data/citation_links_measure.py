"""Measure citation deep links over the knowledge base (decision 0044).

For every public article, every passage an answer can quote (a sentence of a paragraph, a list item, a table row)
is turned into a link with keys of N words; a passage resolves when the page marks the block that holds it. Also
reports link lengths for the chosen N and for the Text Fragment alternative (`#:~:text=start,end`).

    PYTHONPATH=$PWD python docs/decisions/data/citation_links_measure.py knowledge
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import frontmatter

import channels.kb_links as kb

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-ZÁÉÍÓÚÂÊÔÃÕÇ0-9\"“(])")


def passages(markdown: str) -> list[tuple[str, int]]:
    """(Markdown source of a quotable passage, index of the opening token of the block that holds it)."""
    tokens = kb.article_parser().parse(markdown)
    lines = markdown.splitlines()
    blocks = kb._blocks(tokens)
    out: list[tuple[str, int]] = []
    for opener, inlines in blocks.items():
        token = tokens[opener]
        if token.type in ("list_item_open", "tr_open") and token.map:
            start, _ = token.map
            # The item's own first line(s) up to its nested content: its inline tokens' source.
            source = " ".join(i.content for i in inlines)
            out.append((source if token.type == "list_item_open" else lines[start], opener))
        else:
            for inline in inlines:
                for sentence in _SENTENCE_END.split(inline.content.replace("\n", " ")):
                    if sentence.strip():
                        out.append((sentence.strip(), opener))
    return out


def resolves(markdown: str, quote_md: str, opener: int) -> bool:
    tokens = kb.article_parser().parse(markdown)
    link = kb.article_link("kb://articles/x", [quote_md])
    keys = kb.keys_from_query(parse_qs(urlsplit(link).query).get(kb.PARAM, []))
    return kb.mark_passages(tokens, keys) == [opener]


def text_fragment(quote_md: str, words: int = 3) -> str:
    text = " ".join(kb.reader_text(quote_md).split())
    parts = text.split(" ")
    if len(parts) <= 2 * words:
        return "#:~:text=" + quote(text, safe="")
    return f"#:~:text={quote(' '.join(parts[:words]), safe='')},{quote(' '.join(parts[-words:]), safe='')}"


def main(root: Path) -> None:
    articles = []
    for path in sorted(root.glob("*.md")):
        if path.name == "README.md":
            continue
        post = frontmatter.loads(path.read_text(encoding="utf-8"))
        if post.metadata.get("audience", "public") != "public":
            continue
        articles.append((str(post.metadata.get("id", path.stem)), post.content))
    all_passages = [(doc, md, q, o) for doc, md in articles for q, o in passages(md)]
    report: dict[str, object] = {"articles": len(articles), "passages": len(all_passages)}
    chosen = kb.KEY_WORDS
    by_doc: dict[str, list[str]] = {}
    for doc, _, q, _ in all_passages:
        by_doc.setdefault(doc, []).append(q)
    by_n = {}
    for n in (2, 3, 4, 5, 6, 8, 10):
        kb.KEY_WORDS = n  # type: ignore[misc]
        ok = sum(resolves(md, q, o) for _, md, q, o in all_passages)
        one = [len(kb.article_link(f"kb://articles/{doc}", [q])) for doc, _, q, _ in all_passages]
        four = [
            len(kb.article_link(f"kb://articles/{doc}", qs[i : i + 4]))
            for doc, qs in by_doc.items()
            for i in range(0, len(qs) - 3, 4)
        ]
        by_n[n] = {
            "resolved": round(ok / len(all_passages), 4),
            "link_chars_one_quote_median_max": [statistics.median(one), max(one)],
            "link_chars_four_quotes_median_max": [statistics.median(four), max(four)],
        }
    kb.KEY_WORDS = chosen  # type: ignore[misc]
    report["by_key_words"] = by_n
    report["misses_at_chosen"] = [q[:80] for _, md, q, o in all_passages if not resolves(md, q, o)]
    fragments = [len(f"/kb/{doc}") + len(text_fragment(q)) for doc, _, q, _ in all_passages]
    report["text_fragment_chars_one_quote_median_max"] = [statistics.median(fragments), max(fragments)]
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "knowledge"))
