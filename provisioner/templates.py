"""Renders the jinja2 templates under the project's top-level `templates/` directory.

Templates are named after their target (etcd.service.j2 renders etcd.service). Undefined
variables are errors, so a template and its caller cannot drift apart silently.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def render(template: str, /, **values: Any) -> str:
    return _environment().get_template(template).render(**values)
