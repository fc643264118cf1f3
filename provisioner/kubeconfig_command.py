"""`provisioner kubeconfig -f cluster.yaml [--user NAME] [--group G]... [-o FILE]`.

Prints a kubeconfig for the cluster (as `kind get kubeconfig` and `kubeadm kubeconfig user` do):
the admin credential by default, or a client certificate issued for `--user` (CN) and its
`--group`s (O), signed by the cluster CA from local state and kept there, so asking again gives
the same credential. With -o the file is written 0600; it holds a private key.
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from provisioner.cluster_commands import SPEC_OPTION, _context, _load
from provisioner.errors import InvalidInputError, ProvisionerError

USER_NAME = re.compile(r"^[A-Za-z0-9:@._-]{1,128}$")


def user_credential(ctx, user: str, groups: tuple[str, ...]):
    from provisioner.pki.certs import CertKeyPair, issue, matches
    from provisioner.pki.cluster import load_pair

    pki = ctx.state.pki_dir
    ca = load_pair(pki, "ca")
    directory = pki / "users"
    stem = re.sub(r"[^A-Za-z0-9._-]", "-", user)
    if CertKeyPair.exists(directory, stem):
        pair = CertKeyPair.load(directory, stem)
        if matches(pair, ca, common_name=user, organizations=groups, dns_names=(),
                   ip_addresses=()):
            return pair
    directory.mkdir(mode=0o700, exist_ok=True)
    pair = issue(ca, user, organizations=groups, client=True)
    pair.save(directory, stem)
    return pair


@click.command("kubeconfig")
@SPEC_OPTION
@click.option("--user", default=None, help="A user to issue a client certificate for "
              "(default: the cluster admin).")
@click.option("--group", "groups", multiple=True, help="A group of --user (repeatable).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to FILE (mode 0600) instead of standard output.")
def kubeconfig(spec_file: str, user: str | None, groups: tuple[str, ...],
               output: Path | None) -> None:
    """Print a kubeconfig for the cluster (the admin's, or --user's)."""
    from provisioner.phases.kubeconfig import admin_kubeconfig, api_endpoint
    from provisioner.pki.kubeconfig import render_kubeconfig, write_kubeconfig

    spec = _load(spec_file)
    if not spec.control_plane_hosts:
        raise InvalidInputError(f"{spec_file}: no host has the control-plane role, so the "
                                "cluster has no API server to reach")
    if groups and user is None:
        raise click.UsageError("--group needs --user")
    if user is not None and not USER_NAME.match(user):
        raise click.UsageError(f"--user {user!r}: use letters, digits and : @ . _ - only")
    ctx = _context(spec, create_state=False)
    if not (ctx.state.pki_dir / "ca.crt").exists():
        raise ProvisionerError(f"no local state for cluster {spec.name!r}; run "
                               f"`provisioner create cluster -f {spec_file}` first")
    if user is None:
        content = admin_kubeconfig(ctx)
    else:
        content = render_kubeconfig(cluster_name=spec.name, server=api_endpoint(spec),
                                    ca_pem=(ctx.state.pki_dir / "ca.crt").read_bytes(),
                                    user=user, client=user_credential(ctx, user, groups))
    if output is None:
        click.echo(content, nl=False)
    else:
        write_kubeconfig(output, content)
        click.echo(f"wrote {output}", err=True)
