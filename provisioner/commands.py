"""Attaches every command group to the root CLI.

Each group lives next to the code it drives; this list is the one place that says which
groups exist.
"""

from __future__ import annotations

import importlib

import click

# (module, attribute) of each click command or group attached to `provisioner`.
GROUPS: list[tuple[str, str]] = [
    ("provisioner.cluster_commands", "commands"),
    ("provisioner.kubeconfig_command", "kubeconfig"),
    ("provisioner.images_command", "images"),
    ("provisioner.lab.cli", "lab"),
    ("provisioner.dev", "dev"),
]


def register(root: click.Group) -> None:
    for module_name, attribute in GROUPS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # group not built yet
            raise
        target = getattr(module, attribute)
        for command in target if isinstance(target, list) else [target]:
            root.add_command(command)
