"""provisioner: a declarative cluster provisioner and the components it installs.

Two halves live in this package. Operator-side code (cli, spec, pki, workflow, phases,
lab, verify) reaches hosts over SSH; host-side code (components/) runs on the hosts and
never imports the operator side.
"""

__version__ = "0.1.0"
