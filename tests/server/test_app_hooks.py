"""App-wide behaviour is installed by the factory (nbflask/app.py), in the order it states;
blueprints hold routes only, so no hook depends on which blueprint happens to be registered
first, and none hides in a blueprint."""

from __future__ import annotations

import ast
from pathlib import Path

import nbflask
from nbflask import errors

#: Blueprint methods that act on the whole app, not on the blueprint's own routes.
APP_WIDE = {
    "record", "record_once", "before_app_request", "after_app_request", "teardown_app_request",
    "app_errorhandler", "app_context_processor", "app_template_filter", "app_template_global",
    "app_template_test", "app_url_defaults", "app_url_value_preprocessor",
}


def test_blueprints_install_nothing_app_wide():
    found = []
    for path in sorted((Path(nbflask.__file__).parent / "blueprints").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in APP_WIDE:
                found.append(f"{path.name}:{node.lineno} {node.attr}")
    assert not found, found


def test_every_error_is_answered_by_the_apps_own_handlers(app):
    """No blueprint answers an error its own way: a store failure reads the same on every route."""
    assert list(app.error_handler_spec) == [None]
    by_code = app.error_handler_spec[None].values()
    registered = {handler for by_class in by_code for handler in by_class.values()}
    assert registered == set(errors.HANDLERS.values())
