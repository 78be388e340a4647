"""The tamper-evident audit trail: append (chain.py), verify (verify.py), export (export.py).

See docs/audit.md for the design.
"""
