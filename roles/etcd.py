"""pyinfra deploy for the `etcd` role: the member's config, certificates and systemd unit.

Same operations as the `etcd` phase's steady state (see provisioner/roles.py for how to run it).
Hosts without the etcd role are left alone.
"""

from provisioner.phases import etcd, pki
from provisioner.pki.table import host_files
from provisioner.roles import DirectOperations, role_context

ctx, me = role_context()
if me.is_etcd:
    operations = DirectOperations()
    share = host_files(ctx.owned.certificates, ctx.spec, me)
    pki.add_host_files(ctx.state.pki_dir, operations, me, share)
    etcd.configure(ctx, operations, me, None)
