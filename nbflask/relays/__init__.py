"""Web-worker side of a kernel's or terminal's websocket: relays between a browser and ZeroMQ.

These modules run only in web workers. A relay asks the kernel host (through
`nbflask.host_client`) for lifecycle and connection info, then talks to the kernel's own sockets.
"""
