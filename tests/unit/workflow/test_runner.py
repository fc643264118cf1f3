"""Phase ordering, --only/--skip selection, dry-run reporting and error wrapping."""

from __future__ import annotations

import io

import pytest

from provisioner.errors import EXIT_USAGE, ProvisionerError, VerifyFailedError
from provisioner.workflow import (
    Phase,
    PhaseOutcome,
    PhaseSelectionError,
    Printer,
    run_phases,
    select_phases,
)


def _phase(name: str, calls: list[str], changes: dict[str, list[str]] | None = None) -> Phase:
    def run(ctx):
        calls.append(name)
        outcome = PhaseOutcome()
        outcome.merge(changes or {})
        return outcome

    return Phase(name, f"doing {name}", run)


NAMES = ["preflight", "pki", "install", "etcd", "verify"]


@pytest.mark.parametrize(
    "only, skip, expected",
    [
        ((), (), NAMES),
        (("etcd",), (), ["etcd"]),
        (("verify", "pki"), (), ["pki", "verify"]),  # workflow order, not argument order
        ((), ("install",), ["preflight", "pki", "etcd", "verify"]),
        (("pki", "etcd"), ("etcd",), ["pki"]),
    ],
)
def test_selection_keeps_workflow_order(only, skip, expected):
    phases = [_phase(n, []) for n in NAMES]
    assert [p.name for p in select_phases(phases, only, skip)] == expected


@pytest.mark.parametrize(
    "only, skip, message",
    [
        (("etc",), (), "--only: unknown phase etc; phases are: preflight, pki, install, etcd, verify"),
        ((), ("nope",), "--skip: unknown phase nope; phases are: preflight, pki, install, etcd, verify"),
        (("pki",), ("pki",), "--only/--skip leave no phase to run"),
    ],
)
def test_bad_selection_is_a_usage_error(only, skip, message):
    phases = [_phase(n, []) for n in NAMES]
    with pytest.raises(PhaseSelectionError) as raised:
        select_phases(phases, only, skip)
    assert raised.value.message == message
    assert raised.value.exit_code == EXIT_USAGE == 2


def test_phases_run_in_order_and_report_changes_per_host():
    calls: list[str] = []
    phases = [
        _phase("pki", calls, {"cp1": ["place /etc/kubernetes/pki/ca.crt"]}),
        _phase("etcd", calls),
    ]
    out = io.StringIO()
    outcomes = run_phases(phases, None, Printer(out))
    assert calls == ["pki", "etcd"]
    text = out.getvalue()
    assert "[pki] cp1: changed: place /etc/kubernetes/pki/ca.crt" in text
    assert "[etcd] done in" in text and "no changes" in text
    assert "1 change(s) applied" in text
    assert outcomes["pki"].change_count == 1


def test_unchanged_run_says_nothing_changed():
    out = io.StringIO()
    run_phases([_phase("pki", []), _phase("etcd", [])], None, Printer(out))
    assert "nothing to change: every host already matches the spec" in out.getvalue()


def test_dry_run_words_changes_as_would():
    out = io.StringIO()
    run_phases([_phase("etcd", [], {"cp1": ["unit etcd.service"]})], None, Printer(out), dry_run=True)
    text = out.getvalue()
    assert "[etcd] cp1: would unit etcd.service" in text
    assert "dry run: 1 change(s) would be made; nothing was changed" in text


def test_failure_names_the_phase_and_keeps_the_error_class():
    def boom(ctx):
        raise VerifyFailedError("2 of 9 smoke tests failed")

    calls: list[str] = []
    with pytest.raises(ProvisionerError) as raised:
        run_phases([Phase("verify", "testing", boom), _phase("after", calls)], None, Printer(io.StringIO()))
    assert raised.value.message == "phase verify: 2 of 9 smoke tests failed"
    assert isinstance(raised.value, VerifyFailedError) and raised.value.exit_code == 4
    assert calls == []  # nothing runs after a failed phase
