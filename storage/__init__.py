"""Everything persistent: segment file format and crypto, key store, SQL index.

This package imports nothing from ``vms`` or ``api`` (layers point one way).
"""
