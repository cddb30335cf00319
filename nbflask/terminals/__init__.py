"""Jupyter's terminals: ptys owned by the kernel host (manager.py), relayed by the web workers (relay.py)."""
