"""The kernel host: the one process per deployment that owns kernels and terminals.

Everything in this folder runs only in that process (`python -m nbflask.host.server`), never in a
web worker, and never imports Flask. Web workers reach it through `nbflask.host_client`; the
operations both sides speak are declared in `nbflask.protocol`.
"""
