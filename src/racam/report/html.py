"""Markdown report -> standalone HTML page with the same content."""

from __future__ import annotations

from pathlib import Path

import markdown

from racam.io import atomic_write_text

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.92em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; }
td[style*="right"] { white-space: nowrap; }
img { max-width: 100%; }
code, pre { background: #f4f4f4; }
pre { padding: 0.6em; overflow-x: auto; white-space: pre-wrap; }
"""


def write_html(markdown_text: str, path: Path, title: str) -> Path:
    """Render ``markdown_text`` to ``path`` (tables, fenced code, and markdown inside
    ``<details markdown="1">`` blocks)."""
    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code", "md_in_html"])
    page = (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{_STYLE}</style></head><body>\n{body}\n</body></html>\n")
    return atomic_write_text(path, page)
