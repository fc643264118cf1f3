"""The cluster commands: validate, create cluster, delete cluster, verify.

Each command loads the spec (all problems at once, exit 3), builds the workflow context and
hands over to the workflow runner; errors travel up to the CLI as ProvisionerError.
"""

from __future__ import annotations

import shutil
import sys

import click

from provisioner.errors import EXIT_INVALID_INPUT, VerifyFailedError
from provisioner.state import ClusterState
from provisioner.workflow import PhaseSelectionError, Printer, run_phases, select_phases

SPEC_OPTION = click.option(
    "-f", "--file", "spec_file", required=True, type=click.Path(dir_okay=False),
    help="The cluster spec (YAML).",
)


def _verbose() -> bool:
    ctx = click.get_current_context()
    root = ctx.find_root().obj
    return bool(getattr(root, "verbose", False))


def _load(spec_file: str):
    from provisioner.spec import load_cluster

    spec = load_cluster(spec_file)
    for warning in spec.warnings:
        click.secho(f"WARNING: {warning}", fg="yellow", err=True)
    return spec


def _context(spec, *, quiet: bool = False, create_state: bool = True):
    from provisioner.phases.context import ClusterContext

    state = ClusterState.for_cluster(spec.name)
    return ClusterContext(
        spec=spec,
        state=state.ensure() if create_state else state,
        printer=Printer(quiet=quiet),
        verbose=_verbose(),
    )


@click.command()
@SPEC_OPTION
def validate(spec_file: str) -> None:
    """Check a cluster spec; exit 0 when valid, 3 when not (every problem listed)."""
    from provisioner.spec import validate_cluster

    spec, errors, warnings = validate_cluster(spec_file)
    for warning in warnings:
        click.secho(f"WARNING: {warning}", fg="yellow", err=True)
    if errors or spec is None:
        click.secho(f"ERROR: {spec_file} has {len(errors)} problem(s):", fg="red", err=True)
        for problem in errors:
            click.echo(f"  {problem}", err=True)
        sys.exit(EXIT_INVALID_INPUT)
    click.echo(
        f"{spec_file}: valid cluster {spec.name!r} with {len(spec.hosts)} host(s), "
        f"{len(spec.etcd_hosts)} etcd member(s)"
    )


@click.group()
def create() -> None:
    """Create resources."""


@create.command("cluster")
@SPEC_OPTION
@click.option("--dry-run", is_flag=True, help="Show what would change on each host; change nothing.")
@click.option("--only", multiple=True, metavar="PHASE",
              help="Run only this phase, or sub-phase as parent/child (repeatable).")
@click.option("--skip", multiple=True, metavar="PHASE",
              help="Skip this phase, or sub-phase as parent/child (repeatable).")
def create_cluster(spec_file: str, dry_run: bool, only: tuple[str, ...], skip: tuple[str, ...]) -> None:
    """Bring every host in the spec to the desired state, then run the smoke tests."""
    from provisioner.phases import CREATE_PHASES

    try:
        phases = select_phases(CREATE_PHASES, only, skip)
    except PhaseSelectionError as error:
        raise click.UsageError(error.message) from error
    spec = _load(spec_file)
    ctx = _context(spec)
    run_phases(phases, ctx, ctx.printer, dry_run=dry_run)


@click.group()
def delete() -> None:
    """Delete resources."""


@delete.command("cluster")
@SPEC_OPTION
@click.option("--dry-run", is_flag=True, help="Show what would be removed; remove nothing.")
@click.option("--keep-state", is_flag=True, help="Keep the local state (certificates, pinned host keys).")
def delete_cluster(spec_file: str, dry_run: bool, keep_state: bool) -> None:
    """Stop and remove what `create cluster` installed; hosts are left as they were.

    Runs every create phase's clean-up in reverse order."""
    from provisioner.phases import DELETE_PHASES

    spec = _load(spec_file)
    ctx = _context(spec)
    run_phases(select_phases(DELETE_PHASES), ctx, ctx.printer, dry_run=dry_run)
    if not dry_run and not keep_state:
        shutil.rmtree(ctx.state.root, ignore_errors=True)
        click.echo(f"removed local state {ctx.state.root}")


@click.command()
@SPEC_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON record per check.")
def verify(spec_file: str, as_json: bool) -> None:
    """Run the smoke tests against a created cluster; exit 0 only if all pass, 4 if any fails."""
    from provisioner.phases.verify import smoke_tests
    from provisioner.verify.checks import to_json

    spec = _load(spec_file)
    results = smoke_tests(_context(spec, quiet=True, create_state=False))
    if as_json:
        click.echo(to_json(results))
    else:
        for result in results:
            click.echo(result.line())
    failed = [r for r in results if not r.ok]
    if failed:
        raise VerifyFailedError(f"{len(failed)} of {len(results)} smoke tests failed")
    if not as_json:
        click.echo(f"all {len(results)} smoke tests passed")


@click.group()
def certs() -> None:
    """Inspect the cluster's certificates."""


@certs.command("check-expiration")
@SPEC_OPTION
def check_expiration(spec_file: str) -> None:
    """List every CA and certificate of the cluster with when it expires (as kubeadm does)."""
    from provisioner.phases import registry
    from provisioner.phases.verify import require_created
    from provisioner.pki.expiry import expiration_table

    spec = _load(spec_file)
    ctx = _context(spec, quiet=True, create_state=False)
    require_created(ctx)
    click.echo(expiration_table(ctx.state.pki_dir, ctx.owned.certificates, spec,
                                also=registry.issuing(spec)))


commands = [validate, create, delete, verify, certs]
