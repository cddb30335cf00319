"""Web-worker side of a kernel's or terminal's websocket: relays between a browser and ZeroMQ.

These modules run only in web workers. A relay asks the kernel host (through
`nbflask.host_client`) for lifecycle and connection info, then talks to the kernel's own sockets.

- kernel.py: one client connection <-> one kernel (its reader and its pump), with
  iopubfeed.py (one iopub subscription per kernel and worker, shared by its relays),
  resume.py (a returning client's replay first, then live messages, each once),
  progress.py (how far each client got, for the host's replay) and pending.py (replies due
  to a client that left, handed to the host for its session).
- terminal.py: one page <-> one terminal of the host.
- hostwatch.py: what both watch of the kernel host: its event feed, and whether it runs.
"""
