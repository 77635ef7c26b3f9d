"""The ``vms`` command: one module per command group; commands.py parses and dispatches."""

from vms.cli.commands import main

__all__ = ["main"]
