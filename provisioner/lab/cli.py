"""`provisioner lab up|down|list`: thin click commands over provisioner.lab.

Place: attached to the root CLI by provisioner/commands.py. Errors are raised as
ProvisionerError and printed by provisioner/cli.py; this module only prints progress and results.
"""

from __future__ import annotations

import time

import click

from provisioner.lab.lab import DEFAULT_NAME, DEFAULT_NODES, Lab, list_labs, repo_inventory_path
from provisioner.lab.vagrant import VagrantLab


def _say(message: str) -> None:
    click.echo(f"[lab] {message}")


def _hosts(count: int) -> str:
    return f"{count} host" if count == 1 else f"{count} hosts"


@click.group()
def lab() -> None:
    """Local lab hosts to provision: systemd-nspawn machines (or Vagrant VMs)."""


@lab.command("up")
@click.option("--name", default=DEFAULT_NAME, show_default=True, help="Lab name.")
@click.option("--nodes", default=DEFAULT_NODES, show_default=True, type=click.IntRange(1, 200),
              help="Number of hosts (an existing lab only grows).")
@click.option("--provider", type=click.Choice(["nspawn", "vagrant"]), default="nspawn",
              show_default=True)
def up(name: str, nodes: int, provider: str) -> None:
    """Boot the lab hosts (idempotent) and write their inventory."""
    started = time.monotonic()
    if provider == "vagrant":
        vagrant_lab = VagrantLab(progress=_say)
        for vm in vagrant_lab.up(nodes):
            _say(f"{vm.name}  {vm.address}:{vm.port}  [{', '.join(vm.roles)}]")
        _say(f"inventory: {vagrant_lab.inventory_path}")
        return
    the_lab = Lab(name, progress=_say)
    hosts = the_lab.up(nodes)
    for host in hosts:
        _say(f"{host.name}  {host.address}  [{', '.join(host.roles)}]")
    if the_lab.changes:
        _say(f"lab {name} is up ({_hosts(len(hosts))}, {time.monotonic() - started:.0f}s)")
    else:
        _say(f"lab {name} is already up with {_hosts(len(hosts))}: nothing changed")
    _say(f"ssh key: {the_lab.key_path}")
    repo_copy = repo_inventory_path(name)
    if repo_copy:
        _say(f"inventory: {repo_copy} (copy of {the_lab.inventory_path})")
    else:
        _say(f"inventory: {the_lab.inventory_path}")


@lab.command("down")
@click.option("--name", default=DEFAULT_NAME, show_default=True, help="Lab name.")
def down(name: str) -> None:
    """Stop the lab hosts and remove everything the lab created."""
    if name == "vagrant" and VagrantLab().load() is not None:
        if VagrantLab(progress=_say).down():
            _say("vagrant lab destroyed")
        return
    the_lab = Lab(name, progress=_say)
    if the_lab.down():
        _say(f"lab {name} removed")
    else:
        _say(f"no lab named {name}: nothing to do")


@lab.command("list")
def list_command() -> None:
    """Show the labs of this state root."""
    labs = list_labs()
    if not labs:
        click.echo("no labs")
        return
    rows = [("NAME", "PROVIDER", "NODES", "STATUS", "SUBNET")]
    for item in labs:
        rows.append((item.name, item.provider, str(item.node_count()), item.status(),
                     item.subnet()))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
