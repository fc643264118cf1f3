"""`provisioner lab up|down|list`: thin click commands over the lab providers.

Place: attached to the root CLI by provisioner/commands.py. Labs are opened through
providers.py, so nothing here knows which providers exist. Errors are raised as
ProvisionerError and printed by provisioner/cli.py; this module only prints progress and results.
"""

from __future__ import annotations

import time

import click

from provisioner.lab.base import repo_inventory_path
from provisioner.lab.lab import DEFAULT_NAME, DEFAULT_NODES
from provisioner.lab.providers import PROVIDERS, list_labs, open_lab
from provisioner.lab.sources import ENV_VAR as MIRROR_ENV


def _say(message: str) -> None:
    click.echo(f"[lab] {message}")


def _hosts(count: int) -> str:
    return f"{count} host" if count == 1 else f"{count} hosts"


@click.group()
def lab() -> None:
    """Local lab hosts to provision: systemd-nspawn machines or Vagrant VMs."""


@lab.command("up")
@click.option("--name", default=None,
              help="Lab name (default: the provider's own, `lab` or `vagrant`).")
@click.option("--nodes", default=None, type=click.IntRange(1, 200),
              help=f"Number of hosts (default: an existing lab's count, else {DEFAULT_NODES}; "
                   "an existing lab only grows).")
@click.option("--provider", default=None, metavar="|".join(PROVIDERS),
              help="How hosts are made (default: what the lab was made with, else nspawn).")
@click.option("--mirror", default=None, metavar="URL",
              help=f"Debian mirror for building the lab's root (default: ${MIRROR_ENV}, "
                   "else this machine's apt sources).")
@click.option("--shrink", is_flag=True,
              help="Also stop and remove the hosts past --nodes (nspawn labs).")
def up(name: str | None, nodes: int | None, provider: str | None, mirror: str | None,
       shrink: bool) -> None:
    """Boot the lab hosts (idempotent) and write their inventory."""
    started = time.monotonic()
    the_lab = open_lab(name, provider, progress=_say)
    if shrink:
        if nodes is None:
            raise click.UsageError("--shrink needs --nodes: how many hosts to keep")
        if not hasattr(the_lab, "shrink"):
            raise click.UsageError(f"--shrink: a {the_lab.provider} lab cannot shrink; "
                                   "`lab down` it and `lab up` a smaller one")
        if nodes < the_lab.node_count():
            the_lab.shrink(nodes)
            started_changes = list(the_lab.changes)
        else:
            started_changes = []
    hosts = the_lab.up(nodes or the_lab.node_count() or DEFAULT_NODES, mirror=mirror)
    if shrink:
        the_lab.changes[:0] = started_changes
    for host in hosts:
        _say(f"{host.name}  {host.user}@{host.address}  [{', '.join(host.roles)}]")
    if the_lab.changes:
        _say(f"lab {the_lab.name} is up ({_hosts(len(hosts))}, "
             f"{time.monotonic() - started:.0f}s)")
    else:
        _say(f"lab {the_lab.name} is already up with {_hosts(len(hosts))}: nothing changed")
    keys = sorted({str(host.key) for host in hosts if host.key})
    _say(f"ssh key{'s' if len(keys) > 1 else ''}: {', '.join(keys)}")
    repo_copy = repo_inventory_path(the_lab.name, type(the_lab).default_name)
    if repo_copy:
        _say(f"inventory: {repo_copy} (copy of {the_lab.inventory_path})")
    else:
        _say(f"inventory: {the_lab.inventory_path}")


@lab.command("down")
@click.option("--name", default=DEFAULT_NAME, show_default=True, help="Lab name.")
def down(name: str) -> None:
    """Stop the lab hosts and remove everything the lab created."""
    the_lab = open_lab(name, progress=_say)
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
