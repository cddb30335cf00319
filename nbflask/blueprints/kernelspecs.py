"""`/api/kernelspecs` and `/kernelspecs/<name>/<resource>` (logos, kernel.js, any other file).

Names are case-insensitive, as in Jupyter; the models always carry the installed (lower-case)
name. Resource files are served from the spec's folder under the same sandbox as `/files/`,
since an HTML or SVG file there would otherwise run script with the server's origin.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, send_file, url_for

from ..errors import APIError
from ..protocol import kernelspecs
from ..protocol.kernelspecs import KernelSpec
from ..state import state
from .files import SANDBOX

bp = Blueprint("kernelspecs", __name__)


def spec_model(spec: KernelSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "spec": spec.to_dict(),
        "resources": {
            resource.rsplit(".", 1)[0] if resource.startswith("logo-") else resource: url_for(
                ".resource", name=spec.name, resource=resource
            )
            for resource in spec.resources()
        },
    }


def find(name: str) -> KernelSpec:
    try:
        return kernelspecs.get(name)
    except kernelspecs.NoSuchKernelSpec:
        raise APIError(404, f"Kernel spec {name} not found", "Not Found") from None


@bp.get("/api/kernelspecs", strict_slashes=False)
def list_specs() -> Response:
    specs = kernelspecs.find_all()
    default = state().settings.kernels.default
    return jsonify(
        default=default if default in specs else kernelspecs.NATIVE,
        kernelspecs={name: spec_model(spec) for name, spec in specs.items()},
    )


@bp.get("/api/kernelspecs/<name>")
def get_spec(name: str) -> Response:
    return jsonify(spec_model(find(name)))


@bp.get("/kernelspecs/<name>/<path:resource>")
def resource(name: str, resource: str) -> Response:
    path = kernelspecs.resource_path(find(name), resource)
    if path is None:
        raise APIError(404, f"Kernel spec {name} has no resource {resource}", "Not Found")
    response = send_file(path, max_age=3600)
    response.headers["Content-Security-Policy"] = SANDBOX
    return response
