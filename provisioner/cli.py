"""Command line entry point `provisioner`: the only place that prints errors and picks exit codes.

Subcommand groups owned by other packages (lab, dev) are attached here; each command's body
lives in the package that owns the work, so this module stays a thin shell.
"""

from __future__ import annotations

import logging
import sys
import traceback

import click

from provisioner.errors import EXIT_INTERRUPTED, ProvisionerError


class _Context:
    verbose: bool = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Show debug logs and tracebacks.")
@click.version_option(package_name="provisioner")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Declarative cluster provisioner: one YAML file, plain Linux hosts, a working cluster."""
    state = ctx.ensure_object(_Context)
    state.verbose = verbose
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )


def _register_groups() -> None:
    # Imported here so each group's module owns its own commands.
    from provisioner.commands import register

    register(cli)


# Commands that run asyncio servers in this process; everything else may drive hosts over SSH.
_ASYNCIO_COMMANDS = {"dev"}


def _enable_parallel_ssh(args: list[str]) -> None:
    """Let pyinfra's gevent pool run hosts in parallel by making sockets cooperative.

    Must happen before paramiko opens any socket; skipped for asyncio commands, whose event
    loop must not run on gevent-patched selectors.
    """
    words = [a for a in args if not a.startswith("-")]
    if words and words[0] in _ASYNCIO_COMMANDS:
        return
    from gevent import monkey

    monkey.patch_all()


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; turn expected errors into one clear message and an exit code."""
    _enable_parallel_ssh(list(argv if argv is not None else sys.argv[1:]))
    _register_groups()
    verbose = "-v" in (argv if argv is not None else sys.argv[1:]) or "--verbose" in (
        argv if argv is not None else sys.argv[1:]
    )
    try:
        cli.main(args=argv, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except ProvisionerError as exc:
        if verbose:
            traceback.print_exc()
        click.secho(f"ERROR: {exc.message}", fg="red", err=True)
        if exc.command:
            click.echo(f"  command: {exc.command}", err=True)
        if exc.output:
            for line in exc.output.rstrip().splitlines()[-20:]:
                click.echo(f"  | {line}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - the last net: one line, the traceback only with -v
        if verbose:
            traceback.print_exc()
        what = f"{exc.strerror}: {exc.filename}" if isinstance(exc, OSError) and exc.filename else str(exc)
        click.secho(f"ERROR: {type(exc).__name__}: {what}", fg="red", err=True)
        if not verbose:
            click.echo("  (an unexpected error; run again with -v for the traceback, and please "
                       "report it)", err=True)
        sys.exit(1)
    sys.exit(0)
