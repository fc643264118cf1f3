"""The workflow runner: selection by path, sub-phases, run-if, dry run done by the runner,
clean-up order, error wrapping.

The session is the one stand-in here: it is the network boundary (the engine's own tests cover
a real one).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import pytest

from provisioner.errors import EXIT_USAGE, ProvisionerError, VerifyFailedError
from provisioner.workflow import (
    Phase,
    PhaseSelectionError,
    Printer,
    cleanup_phases,
    run_phases,
    select_phases,
    walk,
)


@dataclass
class Changes:
    by_host: dict[str, list[str]]
    details: dict[tuple[str, str], list[str]] = field(default_factory=dict)


class RecordingSession:
    """Operations recorded by a plan; preview reports them, apply 'makes' them."""

    def __init__(self, log: list[str]):
        self.log = log
        self.ops: list[tuple[str, str]] = []

    def open(self):
        self.log.append("open")

    def close(self):
        self.log.append("close")

    def op(self, host: str, description: str):
        self.ops.append((host, description))

    def _changes(self) -> Changes:
        by_host: dict[str, list[str]] = {}
        for host, description in self.ops:
            by_host.setdefault(host, []).append(description)
        return Changes(by_host, {(h, d): ["--- a", "+++ b"] for h, d in self.ops})

    def preview(self) -> Changes:
        self.log.append("preview")
        return self._changes()

    def apply(self) -> Changes:
        self.log.append("apply")
        return self._changes()


@dataclass
class Ctx:
    log: list[str] = field(default_factory=list)
    etcd: bool = True

    def session(self, hosts):
        self.log.append(f"session {hosts}")
        return RecordingSession(self.log)


def leaf(name: str, calls: list[str] | None = None, ops=(), **kwargs) -> Phase:
    def plan(ctx, plan):
        if calls is not None:
            calls.append(name)
        for host, description in ops:
            plan.session.op(host, description)

    return Phase(name, f"doing {name}", plan, **kwargs)


WORKFLOW = [
    leaf("preflight"),
    Phase("control-plane", "control plane", phases=(leaf("apiserver"), leaf("scheduler"))),
    leaf("etcd", run_if=lambda ctx: ctx.etcd),
    leaf("verify"),
]
PATHS = [path for path, _ in walk(WORKFLOW)]


@pytest.mark.parametrize("only, skip, expected", [
    ((), (), ["preflight", "control-plane/apiserver", "control-plane/scheduler", "etcd", "verify"]),
    (("etcd",), (), ["etcd"]),
    (("verify", "preflight"), (), ["preflight", "verify"]),  # workflow order, not argument order
    (("control-plane",), (), ["control-plane/apiserver", "control-plane/scheduler"]),
    (("control-plane/scheduler",), (), ["control-plane/scheduler"]),
    ((), ("control-plane/apiserver", "verify"),
     ["preflight", "control-plane/scheduler", "etcd"]),
    (("control-plane",), ("control-plane/apiserver",), ["control-plane/scheduler"]),
])
def test_selection_by_path_keeps_workflow_order(only, skip, expected):
    assert [s.path for s in select_phases(WORKFLOW, only, skip)] == expected


@pytest.mark.parametrize("only, skip, message", [
    (("etc",), (), f"--only: unknown phase etc; phases are: {', '.join(PATHS)}"),
    ((), ("apiserver",), f"--skip: unknown phase apiserver; phases are: {', '.join(PATHS)}"),
    (("etcd",), ("etcd",), "--only/--skip leave no phase to run"),
])
def test_bad_selection_is_a_usage_error(only, skip, message):
    with pytest.raises(PhaseSelectionError) as raised:
        select_phases(WORKFLOW, only, skip)
    assert raised.value.message == message
    assert raised.value.exit_code == EXIT_USAGE == 2


def test_a_phase_needs_a_plan_or_sub_phases_and_a_plain_name():
    with pytest.raises(ValueError, match="needs a plan"):
        Phase("empty", "nothing")
    with pytest.raises(ValueError, match="must not contain"):
        leaf("a/b")


def test_run_if_skips_a_phase_and_says_so():
    calls: list[str] = []
    phases = [leaf("pki", calls), leaf("etcd", calls, run_if=lambda ctx: ctx.etcd)]
    out = io.StringIO()
    run_phases(select_phases(phases), Ctx(etcd=False), Printer(out))
    assert calls == ["pki"]
    assert "[etcd] skipped: not needed for this cluster" in out.getvalue()


def test_a_parents_run_if_gates_its_sub_phases():
    calls: list[str] = []
    phases = [Phase("cp", "control plane", phases=(leaf("apiserver", calls),),
                    run_if=lambda ctx: ctx.etcd)]
    run_phases(select_phases(phases), Ctx(etcd=False), Printer(io.StringIO()))
    assert calls == []


def test_a_real_run_applies_operations_then_runs_actions_and_reports_both():
    ctx = Ctx()
    done: list[str] = []

    def plan(ctx, plan):
        plan.session.op("cp1", "unit etcd.service")
        plan.then(lambda: done.append("joined") or {"cp2": ["joined the etcd cluster"]},
                  would=[("cp2", "add as a new etcd member")])
        plan.then(lambda: done.append("waited"), title="waiting for health")

    out = io.StringIO()
    outcomes = run_phases(select_phases([Phase("etcd", "etcd", plan)]), ctx, Printer(out))
    text = out.getvalue()
    assert ctx.log == ["session None", "open", "apply", "close"]
    assert done == ["joined", "waited"]
    assert "[etcd] cp1: changed: unit etcd.service" in text
    assert "[etcd] cp2: changed: joined the etcd cluster" in text
    assert "2 change(s) applied" in text
    assert outcomes["etcd"].change_count == 2


def test_a_dry_run_previews_operations_with_their_diff_and_runs_no_action():
    ctx = Ctx()
    done: list[str] = []

    def plan(ctx, plan):
        plan.session.op("cp1", "unit etcd.service")
        plan.then(lambda: done.append("joined"), would=[("cp2", "add as a new etcd member")])
        plan.then(lambda: done.append("waited"), title="waiting for health")

    out = io.StringIO()
    run_phases(select_phases([Phase("etcd", "etcd", plan)]), ctx, Printer(out), dry_run=True)
    text = out.getvalue()
    assert done == []
    assert "apply" not in ctx.log and "preview" in ctx.log
    assert "[etcd] cp1: would unit etcd.service\n    --- a\n    +++ b\n" in text
    assert "[etcd] cp2: would add as a new etcd member" in text
    assert "[etcd] skipped in a dry run: waiting for health" in text
    assert "dry run: 2 change(s) would be made; nothing was changed" in text


def test_a_phase_that_never_uses_the_session_never_connects():
    ctx = Ctx()
    run_phases(select_phases([leaf("local")]), ctx, Printer(io.StringIO()))
    assert ctx.log == []


def test_the_session_reaches_the_phases_hosts_and_is_closed_on_failure():
    ctx = Ctx()

    def plan(ctx, plan):
        plan.session.op("cp1", "x")
        raise ProvisionerError("probe failed")

    with pytest.raises(ProvisionerError):
        run_phases(select_phases([Phase("etcd", "etcd", plan, hosts=lambda ctx: ["cp1"])]), ctx,
                   Printer(io.StringIO()))
    assert ctx.log == ["session ['cp1']", "open", "close"]


def test_unchanged_run_says_nothing_changed():
    out = io.StringIO()
    run_phases(select_phases([leaf("pki"), leaf("etcd")]), Ctx(), Printer(out))
    assert "nothing to change: every host already matches the spec" in out.getvalue()


def test_failure_names_the_phase_path_and_keeps_the_error_class():
    def boom(ctx, plan):
        raise VerifyFailedError("2 of 9 smoke tests failed")

    calls: list[str] = []
    phases = [Phase("checks", "checks", phases=(Phase("smoke", "testing", boom),)),
              leaf("after", calls)]
    with pytest.raises(ProvisionerError) as raised:
        run_phases(select_phases(phases), Ctx(), Printer(io.StringIO()))
    assert raised.value.message == "phase checks/smoke: 2 of 9 smoke tests failed"
    assert isinstance(raised.value, VerifyFailedError) and raised.value.exit_code == 4
    assert calls == []  # nothing runs after a failed phase


def test_cleanup_runs_in_reverse_with_defaults_for_phases_that_own_things():
    calls: list[str] = []

    def undo(name):
        def plan(ctx, plan):
            calls.append(f"undo {name}")
        return plan

    workflow = [
        leaf("preflight"),  # owns nothing: no clean-up
        leaf("pki", owns="certificates"),
        Phase("cp", "control plane", phases=(leaf("apiserver", owns="manifest"),
                                             leaf("scheduler", owns="manifest"))),
        leaf("addons", cleanup=undo("addons")),  # its own clean-up
    ]
    delete = cleanup_phases(workflow, lambda phase: undo(phase.name) if phase.owns else None)
    assert [path for path, _ in walk(delete)] == ["addons", "cp", "cp/scheduler",
                                                  "cp/apiserver", "pki"]
    run_phases(select_phases(delete), Ctx(), Printer(io.StringIO()))
    assert calls == ["undo addons", "undo scheduler", "undo apiserver", "undo pki"]


@pytest.mark.parametrize("ops, dry_run, seen", [
    ((), False, [0, 0]),                                  # nothing changed before either phase
    ((("cp1", "unit"), ("cp2", "unit")), False, [2, 2]),  # both later phases see the two changes
    ((("cp1", "unit"),), True, [1, 1]),                   # a dry run counts what it would do
])
def test_a_phase_knows_how_many_changes_the_phases_before_it_made(ops, dry_run, seen):
    found: list[int] = []

    def observe(ctx, plan):
        found.append(plan.earlier_changes)

    workflow = [leaf("etcd", ops=ops), Phase("addons", "add-ons", observe),
                Phase("verify", "smoke tests", observe)]
    run_phases(select_phases(workflow), Ctx(), Printer(io.StringIO()), dry_run=dry_run)
    assert found == seen
