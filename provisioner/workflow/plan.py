"""What a phase records while planning: operations in a session, and actions of its own.

The runner owns the dry-run decision. A phase records pyinfra operations through
`plan.session` (opened on first use, over the phase's hosts) and, for work that is not an
operation (joining an etcd member, issuing certificates locally, waiting for health, smoke
tests), an action with `plan.then(action, would=[(host, description)])`. A real run applies the
operations, then runs the actions in order; a dry run previews the operations and reports each
action's `would` lines without running it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

# An action returns the changes it made, per host (None: it changed nothing, e.g. a wait).
Action = Callable[[], Mapping[str, Sequence[str]] | None]


@dataclass(frozen=True)
class Then:
    action: Action
    would: tuple[tuple[str, str], ...]
    title: str


@dataclass
class Plan:
    """Collected by one phase's plan function; applied or previewed by the runner."""

    ctx: Any
    hosts: Sequence[Any] | None = None
    # Changes the phases before this one made in this run (in a dry run, would make): a phase
    # that only proves what they did (smoke tests) may do less when there were none.
    earlier_changes: int = 0
    actions: list[Then] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _session: Any = None

    @property
    def session(self) -> Any:
        """The engine session over the phase's hosts, connected on first use."""
        if self._session is None:
            session = self.ctx.session(self.hosts)
            session.open()
            self._session = session
        return self._session

    @property
    def connected(self) -> bool:
        return self._session is not None

    def then(self, action: Action, *, would: Sequence[tuple[str, str]] = (), title: str = "") -> None:
        """Run `action` after the operations on a real run; in a dry run report `would`
        ((host, description) pairs) instead, or note that `title` was skipped."""
        self.actions.append(Then(action, tuple(would), title))

    def would(self, host: str, description: str) -> None:
        """A change only a dry run can see: the real run's earlier steps make it an operation
        (e.g. placing a certificate that the dry run has not issued)."""
        self.then(lambda: None, would=[(host, description)])

    def note(self, message: str) -> None:
        self.notes.append(message)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
