"""Subcommands of the long-running services and their tools (record, janitor, serve, ...).

Each module listed here offers commands through a ``register(sub, add_config_arg)``
function; this keeps ``vms/cli.py`` small and lets the services grow apart.
"""

from __future__ import annotations

import importlib

SERVICE_MODULES: tuple[str, ...] = (
    "vms.cli.record",   # vms record
    "vms.cli.janitor",  # vms janitor, vms check, vms retention report
    "vms.cli.access",   # vms audit verify (users are in vms.cli.commands)
    "vms.cli.export",   # vms export verify
    "vms.cli.ops",      # vms doctor
    "vms.cli.cluster",  # vms cluster new-secret, vms tls self-signed
    "vms.serve",        # vms serve (composition root: may import api)
)


def register(sub, add_config_arg) -> None:
    for name in SERVICE_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a missing dependency inside the module is a real error
                raise
            continue  # listed but not written yet; tests/unit/test_layers.py insists they all exist
        module.register(sub, add_config_arg)
