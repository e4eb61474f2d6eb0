"""MkDocs hook for the API page: the docstrings cross-reference in Sphinx's roles
(``:class:`RTCDataChannel```), which Markdown leaves as text before the code span; drop the role
so that only the name in code shows."""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:py:)?(?:meth|class|func|mod|attr|data|exc|obj|const):(?=<code>)")


def on_page_content(html: str, **kwargs: Any) -> str:
    return ROLE.sub("", html)
