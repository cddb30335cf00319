"""What the web workers and the kernel host share: the Jupyter wire format, ZeroMQ helpers,
where sockets live, kernelspecs, and the operations a worker may ask of the host.

Modules here run in both processes, so they import neither Flask nor the host's managers.
"""
