"""The third-party licenses report of the front-end code this server ships (JupyterLab's
Help > Licenses: its table, and its JSON, CSV and Markdown downloads).

The data is what the builds ship: each front-end wheel (`jupyterlab-js`, `notebook-frontend`)
and each federated extension has a `third-party-licenses.json` (`{"packages": [{"name",
"versionInfo", "licenseId", "extractedText"}]}`) in its folder or its `static/` folder. The
report has one bundle per build, named as jupyterlab_server names it (the package name), and
its three formats are jupyterlab_server's, byte for byte. Free of HTTP; building it reads
a few hundred KB of JSON, so the blueprint runs it off the gevent loop.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..api_error import APIError

log = logging.getLogger(__name__)

LICENSES_FILE = "third-party-licenses.json"
UNKNOWN = "UNKNOWN"
FORMATS = {"json": ("application/json", ".json"), "csv": ("text/csv", ".csv"),
           "markdown": ("text/markdown", ".md")}
CSV_FIELDS = ["name", "versionInfo", "licenseId", "extractedText"]
NO_TEXT = ["", "> No license text available", ""]


@dataclass(frozen=True)
class Build:
    """A front-end build whose licenses the report lists: its package name, and its folder."""

    name: str
    folder: Path


def app_name(static_dir: Path, default: str) -> str:
    """The package name in a build's `package.json` (JupyterLab's: @jupyterlab/application-top),
    or `default` for a build that ships none (Notebook 7's wheel)."""
    for folder in (static_dir, static_dir.parent):
        try:
            return str(json.loads((folder / "package.json").read_text("utf-8"))["name"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return default


def packages(build: Build) -> list[dict[str, Any]]:
    """The packages a build's license files list (none, with a warning, if it has none)."""
    found: list[dict[str, Any]] = []
    for path in (build.folder / LICENSES_FILE, build.folder / "static" / LICENSES_FILE):
        if not path.is_file():
            continue
        try:
            listed = json.loads(path.read_text("utf-8"))["packages"]
            found.extend(package for package in listed if isinstance(package, dict))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("third-party licenses of %s unreadable at %s: %s", build.name, path, exc)
    if not found:
        log.warning("third-party licenses not found for %s in %s", build.name, build.folder)
    return found


#: What a `bundles=` pattern may hold: Python's `re` cannot be stopped once it backtracks, and
#: holds the GIL meanwhile, so `(.*.*.*)*X` froze the whole server. Two repetitions and none
#: applied to a group keep a match of a bundle's short name to a few thousand steps; that is
#: plenty for a name, a prefix or a list of names (the front-ends send none at all).
MAX_PATTERN = 200
MAX_REPEATS = 2


def _repeats(pattern: str) -> tuple[int, bool]:
    """How many repetition operators `pattern` has outside character classes and escapes, and
    whether one follows a group."""
    count, after_group, in_class, index = 0, False, False, 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\":
            index += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            index += 1 + (pattern[index + 1:index + 2] == "]")  # a leading ']' is literal
            continue
        elif char in "*+?{":
            previous = pattern[index - 1] if index else ""
            if not (char == "?" and previous in "*+?}("):  # lazy '*?', or a '(?' group
                count += 1
                after_group = after_group or previous == ")"
        index += 1
    return count, after_group


def bundles(builds: list[Build], pattern: str) -> dict[str, dict[str, Any]]:
    """`{name: {"packages": [...]}}` for the builds whose name `pattern` matches at its start
    (a regular expression, as jupyterlab_server's `bundles=`, within the bounds above); 400 for
    a bad one."""
    count, after_group = _repeats(pattern)
    if len(pattern) > MAX_PATTERN or count > MAX_REPEATS or after_group:
        raise APIError(400, f"bundles: at most {MAX_PATTERN} characters and {MAX_REPEATS} repetitions"
                            " ('*', '+', '?', '{n}'), none of them applied to a group", "Bad Request")
    try:
        wanted = re.compile(pattern)
    except re.error as exc:
        raise APIError(400, f"bundles: not a regular expression: {exc}", "Bad Request") from None
    return {build.name: {"packages": packages(build)} for build in builds if wanted.match(build.name)}


def report(builds: list[Build], report_format: str, pattern: str, full_text: bool) -> tuple[str, str]:
    """The report in `report_format` (json, csv, markdown) and its media type."""
    if report_format not in FORMATS:
        raise APIError(400, f"format: {report_format!r} is not one of {', '.join(FORMATS)}", "Bad Request")
    found = bundles(builds, pattern)
    if report_format == "json":
        text = json.dumps({"bundles": found}, indent=2, sort_keys=True)
    elif report_format == "csv":
        text = _csv(found)
    else:
        text = _markdown(found, full_text)
    return text, FORMATS[report_format][0]


def _csv(found: dict[str, dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["bundle", *CSV_FIELDS])
    writer.writeheader()
    for name, bundle in found.items():
        for package in bundle["packages"]:
            writer.writerow({"bundle": name, **{key: package.get(key, "") for key in CSV_FIELDS}})
    return out.getvalue()


def _text(package: dict[str, Any], key: str) -> str:
    value = package.get(key, UNKNOWN)
    return value if isinstance(value, str) else UNKNOWN


def _markdown(found: dict[str, dict[str, Any]], full_text: bool) -> str:
    widths = [len(_text(package, "name")) for bundle in found.values() for package in bundle["packages"]]
    longest = max(widths, default=1)
    lines: list[str] = []
    for name, bundle in found.items():
        lines += [f"# {name}", ""]
        if not bundle["packages"]:
            lines += ["> No licenses found", ""]
            continue
        for package in bundle["packages"]:
            title = "\t".join([
                f"**{_text(package, 'name').strip()}**".ljust(longest),
                f"`{_text(package, 'versionInfo').strip()}`".ljust(20),
                _text(package, "licenseId").strip(),
            ])
            lines.append("## " + title)
            if full_text:
                text = package.get("extractedText") or ""
                lines += ["", "", "<pre/>", text, "</pre>", ""] if text else NO_TEXT
    return "\n".join(lines)
