"""pyinfra deploy for every host: this project installed in /opt/provisioner/venv.

Same operations as the `install` phase (see provisioner/roles.py for how to run it). The
wheelhouse is built on the operator machine first, exactly as `create cluster` does.
"""

from provisioner.phases import install
from provisioner.roles import DirectOperations, role_context

ctx, me = role_context()
install.add_install_operations(ctx, DirectOperations(), me)
