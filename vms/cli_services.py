"""Subcommands of the long-running services (record, janitor, serve, ...).

Each service module that offers commands has a ``register(sub, add_config_arg)``
function; this keeps ``vms/cli.py`` small and lets the services grow apart.
"""

from __future__ import annotations

import importlib

SERVICE_MODULES: tuple[str, ...] = (
    "vms.cli_record",
)


def register(sub, add_config_arg) -> None:
    for name in SERVICE_MODULES:
        importlib.import_module(name).register(sub, add_config_arg)
