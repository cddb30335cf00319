"""Everything the front-end blueprints need for one app, found and built once at start-up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..stores.base import Store
from . import assets as assets_module
from . import extensions as extensions_module
from .assets import Assets
from .configsections import ConfigSections
from .extensions import Extension
from .licenses import Build, app_name
from .settings import SchemaSource, SettingsRegistry
from .userstate import open_user_state
from .workspaces import Workspaces

NOTEBOOK_APP = "@jupyter-notebook/app"  # Notebook 7's app package; its wheel ships no package.json


@dataclass
class FrontendService:
    assets: Assets
    extensions: list[Extension]
    settings: SettingsRegistry
    workspaces: Workspaces
    config: ConfigSections
    builds: list[Build]  # whose third-party licenses /lab/api/licenses reports

    def extension(self, name: str) -> Extension | None:
        return next((extension for extension in self.extensions if extension.name == name), None)

    def theme_folders(self) -> list[Path]:
        """Where `/lab/api/themes/<package>/...` looks: the app's themes, then extensions'."""
        return [self.assets.themes_dir] + [extension.themes_dir for extension in self.extensions]


def open_frontends(store: Store) -> FrontendService:
    """Find the wheels and extensions, and open the per-user state; AssetsError on a bad install."""
    assets = assets_module.load()
    extensions = extensions_module.discover()
    state = open_user_state(store)
    sources = [SchemaSource(assets.schemas_dir, assets.lab.version)] + [
        SchemaSource(extension.schemas_dir, extension.version) for extension in extensions
    ]
    return FrontendService(
        assets=assets,
        extensions=extensions,
        settings=SettingsRegistry(sources, state),
        workspaces=Workspaces(state),
        config=ConfigSections(state),
        builds=[  # in jupyterlab_server's order: the extensions, then the app
            *(Build(extension.name, extension.path) for extension in extensions),
            Build(app_name(assets.lab.static_dir, "@jupyterlab/application-top"), assets.lab.static_dir),
            Build(app_name(assets.notebook.static_dir, NOTEBOOK_APP), assets.notebook.static_dir),
        ],
    )
