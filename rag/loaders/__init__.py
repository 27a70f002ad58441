"""Load knowledge files (Markdown, HTML, PDF, DOCX, TXT) into `Document`s.

Every loader produces Markdown: headings become `#` lines and plain text is escaped, so one
heading-aware chunker serves all formats.
"""

from rag.loaders.common import LoaderError, escape_markdown
from rag.loaders.directory import LoadReport, collect_directory, load_directory
from rag.loaders.document import load_document

__all__ = [
    "LoadReport",
    "LoaderError",
    "collect_directory",
    "escape_markdown",
    "load_directory",
    "load_document",
]
