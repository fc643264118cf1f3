"""The jinja2 templates of files placed on hosts, shipped in this package (package data).

Templates are named after their target (etcd.service.j2 renders etcd.service) and live next
to this module, so a wheel or any non-editable install renders them as a checkout does.
Undefined variables are errors, so a template and its caller cannot drift apart silently.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import jinja2

SUFFIX = ".j2"


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("provisioner", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )


def names() -> list[str]:
    """Every template this package ships."""
    return sorted(n for n in _environment().list_templates() if n.endswith(SUFFIX))


def variables(template: str) -> set[str]:
    """The variables `template` reads (each must be passed to `render`)."""
    from jinja2 import meta

    environment = _environment()
    source = environment.loader.get_source(environment, template)[0]  # type: ignore[union-attr]
    return meta.find_undeclared_variables(environment.parse(source))


def render(template: str, /, **values: Any) -> str:
    return _environment().get_template(template).render(**values)
