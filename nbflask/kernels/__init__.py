"""Kernels: the Jupyter wire protocol, kernelspecs, the kernel host (sidecar) and the relay."""
