"""The page-config JSON each front-end page reads from `<script id="jupyter-config-data">`.

One function builds it for both front-ends, so JupyterLab and Notebook 7 agree on every URL
the pages call. URLs without `full` are relative to the server root (the front-end joins them
with `baseUrl`); the `full*` ones already carry the prefix. No token goes in the page: the
pages are same-origin and authenticate by cookie (plus the `_xsrf` cookie they echo), so the
token never lands in the HTML, a cache, or a screenshot.
"""

from __future__ import annotations

from typing import Any, Literal

from .assets import Assets
from .extensions import Extension

App = Literal["lab", "notebook"]

LAB_URLS = {
    "appUrl": "/lab",
    "labextensionsUrl": "/lab/extensions",
    "licensesUrl": "/lab/api/licenses",
    "listingsUrl": "/lab/api/listings",
    "settingsUrl": "/lab/api/settings",
    "themesUrl": "/lab/api/themes",
    "translationsApiUrl": "/lab/api/translations",
    "treeUrl": "/lab/tree",
    "workspacesApiUrl": "/lab/api/workspaces",
}

# Status messages answering these requests say nothing about the kernel running user code,
# so the page must not show the kernel busy for them (Jupyter Server sends the same list).
UNTRACKED_MESSAGE_TYPES = [
    "comm_info_request", "comm_info_reply", "kernel_info_request", "kernel_info_reply",
    "shutdown_request", "shutdown_reply", "interrupt_request", "interrupt_reply",
    "debug_request", "debug_reply", "stream", "display_data", "update_display_data",
    "execute_input", "execute_result", "error", "status", "clear_output", "debug_event",
    "input_request", "input_reply",
]

# Plugins that need what nbflask does not do: install extensions from PyPI, and fetch news
# and update checks from the internet (its first-run "get notified?" toast included).
DISABLED_PLUGINS = ["@jupyterlab/extensionmanager-extension", "@jupyterlab/apputils-extension:announcements"]


def page_config(
    app: App,
    assets: Assets,
    extensions: list[Extension],
    base_url: str,
    *,
    tree_path: str = "",
    workspace: str = "default",
    notebook_page: str | None = None,
    mode: str = "multiple-document",
    allow_hidden: bool = False,
    terminals: bool = False,
    expose_app: bool = False,
) -> dict[str, Any]:
    """The page config of one page; `base_url` is the prefix the browser sees, ending in '/'."""
    frontend = assets.lab if app == "lab" else assets.notebook
    config: dict[str, Any] = {
        "appName": "JupyterLab" if app == "lab" else "Jupyter Notebook",
        "appNamespace": app,
        "appVersion": frontend.version,
        "baseUrl": base_url,
        "wsUrl": "",
        "token": "",
        "fullStaticUrl": f"{base_url}static/{app}",
        **LAB_URLS,
        **{"full" + key[0].upper() + key[1:]: base_url + url.lstrip("/") for key, url in LAB_URLS.items()},
        "federated_extensions": [extension.page_entry() for extension in extensions],
        "disabledExtensions": list(DISABLED_PLUGINS),
        "deferredExtensions": [],
        "ignorePlugins": [],
        "mode": mode,
        "treePath": tree_path,
        "workspace": workspace,
        "preferredPath": "/",
        "defaultWorkspace": "default",
        "notebookStartsKernel": True,
        "terminalsAvailable": terminals,
        # The app as window.jupyterapp: what Galata (JupyterLab's UI test tools) and extension
        # authors' tests drive the page through (Jupyter's expose_app_in_browser).
        "exposeAppInBrowser": expose_app,
        # Shows File > Log Out (and Shut Down, which /api/shutdown refuses politely).
        "quitButton": True,
        "cacheFiles": False,
        "devMode": False,
        "buildAvailable": False,
        "buildCheck": False,
        "allow_hidden_files": allow_hidden,
        "mathjaxConfig": "TeX-AMS_HTML-full,Safe",
        "untracked_message_types": list(UNTRACKED_MESSAGE_TYPES),
    }
    if app == "notebook":
        config["frontendUrl"] = base_url
        config["notebookPage"] = notebook_page or "tree"
    return config
