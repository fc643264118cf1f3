"""The table of lab providers, and opening a lab by name with the provider that made it.

Place: the one place that knows which providers exist; `provisioner lab ...` (cli.py) and the
e2e fixtures go through it. Adding a provider is one line in PROVIDERS.
"""

from __future__ import annotations

import json
from pathlib import Path

from provisioner.errors import ProvisionerError
from provisioner.lab.base import LabProvider, Progress, default_state_root
from provisioner.lab.lab import Lab
from provisioner.lab.vagrant import VagrantLab

PROVIDERS: dict[str, type[LabProvider]] = {
    Lab.provider: Lab,        # systemd-nspawn hosts on this machine (root, no hypervisor)
    VagrantLab.provider: VagrantLab,  # Vagrant VMs on libvirt/QEMU
}
DEFAULT_PROVIDER = Lab.provider


def recorded_provider(name: str, state_root: Path) -> str | None:
    """The provider a lab's state names, or None when there is no such lab."""
    try:
        state = json.loads((state_root / "labs" / name / "lab.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ProvisionerError(f"reading the state of lab {name} failed: {exc}")
    return state.get("provider", DEFAULT_PROVIDER)


def open_lab(name: str | None = None, provider: str | None = None,
             state_root: Path | None = None, progress: Progress | None = None) -> LabProvider:
    """The lab `name` as its state records it; a new lab of `provider` when none exists.

    Without a name, the provider's default lab (`lab` for nspawn, `vagrant` for Vagrant)."""
    root = Path(state_root) if state_root else default_state_root()
    if provider is not None and provider not in PROVIDERS:
        raise ProvisionerError(f"unknown lab provider {provider!r}: use "
                               f"{' or '.join(PROVIDERS)}")
    if name is None:
        name = PROVIDERS[provider or DEFAULT_PROVIDER].default_name
    recorded = recorded_provider(name, root)
    if recorded is not None and provider is not None and recorded != provider:
        raise ProvisionerError(f"lab {name} is a {recorded} lab; use `--provider {recorded}` "
                               f"or another --name")
    chosen = recorded or provider or DEFAULT_PROVIDER
    if chosen not in PROVIDERS:
        raise ProvisionerError(f"lab {name} was made by provider {chosen!r}, which this "
                               f"version does not know ({', '.join(sorted(PROVIDERS))})")
    return PROVIDERS[chosen](name, state_root=root, progress=progress)


def list_labs(state_root: Path | None = None) -> list[LabProvider]:
    """Every lab of a state root, each opened by its own provider."""
    root = Path(state_root) if state_root else default_state_root()
    labs_dir = root / "labs"
    if not labs_dir.is_dir():
        return []
    labs = []
    for path in sorted(labs_dir.iterdir()):
        if (path / "lab.json").is_file():
            try:
                labs.append(open_lab(path.name, state_root=root))
            except ProvisionerError:
                continue  # an unreadable state: `lab down --name` still removes it
    return labs
