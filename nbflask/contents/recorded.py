"""Outputs the kernel host recorded, written into the stored notebooks they belong to.

Only a browser writes outputs into a notebook in Jupyter, so a run that outlives its page is
lost there. Here each web worker asks the kernel host, every POLL seconds, for the runs of
notebooks no page has open; it writes each into its cell through the contents service (an
ordinary save: atomic, If-Match, checkpoint rules), into that cell only. A cell deleted or
edited since it ran is left alone, and the log says so. On a conflict (someone saved in
between) the notebook is read again and the outputs merged into the new version.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from nbformat import from_dict

from ..api_error import APIError
from ..stores.base import Conflict, NotFound, StoreError
from .service import Contents

log = logging.getLogger("nbflask.contents.recorded")

POLL = 1.0  # seconds between asks to the kernel host
ATTEMPTS = 3  # saves tried when others keep saving the same notebook meanwhile


def same_as(etag: str | None) -> Any:
    """If-Match for the version read: the save goes through only if it is still the one stored."""
    return lambda stored: etag is not None and stored == etag


class RecordedOutputs:
    def __init__(self, host: Any, contents: Contents, interval: float) -> None:
        self.host = host
        self.contents = contents
        self.interval = interval
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        """Poll in a daemon thread (a greenlet under gevent), from the first request on."""
        if self.thread is None and self.interval > 0:
            self.thread = threading.Thread(target=self._poll_forever, daemon=True, name="recorded-outputs")
            self.thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def _poll_forever(self) -> None:
        while not self.stopping.wait(POLL):
            if self.host.pid() is None:
                continue  # no kernel host, no kernels: nothing ran
            try:
                self.save_due()
            except APIError as exc:
                log.debug("kernel host: %s", exc.message)
            except Exception:
                log.exception("writing recorded outputs failed")

    def save_due(self) -> int:
        """Write what the host hands over now; the number of notebooks changed."""
        changed = 0
        for run in self.host.runs_to_save(self.interval):
            for path in run["paths"]:
                changed += self.save_run(path, run)
            self.host.run_saved(run["kernel_id"], run["id"], run["version"])
        return changed

    def save_run(self, path: str, run: dict[str, Any]) -> bool:
        """Write one run's outputs into cell `run["cell_id"]` of notebook `path`."""
        for _ in range(ATTEMPTS):
            try:
                reply = self.contents.get(path, type="notebook")
            except (NotFound, StoreError) as exc:
                log.info("outputs of run %s not saved: %s", run["id"], exc)
                return False
            nb = reply.model["content"]
            cell = next((c for c in nb.cells if c.get("id") == run["cell_id"]), None)
            if cell is None or cell.get("cell_type") != "code":
                log.info("%s: cell %s is gone; its outputs (run %s) are not saved",
                         path, run["cell_id"], run["id"])
                return False
            if run["code"] is not None and cell.source != run["code"]:
                log.info("%s: cell %s was edited since it ran; its outputs (run %s) are not saved",
                         path, run["cell_id"], run["id"])
                return False
            outputs = [from_dict(output) for output in run["outputs"]]
            if cell.outputs == outputs and cell.get("execution_count") == run["execution_count"]:
                return False
            cell.outputs = outputs
            cell.execution_count = run["execution_count"]
            try:
                self.contents.save(path, {"type": "notebook", "content": nb}, if_match=same_as(reply.etag))
            except Conflict:
                continue  # saved by someone meanwhile: merge into their version
            log.info("%s: saved the outputs of cell %s (run %s, %s)", path, run["cell_id"], run["id"],
                     "done" if run["done"] else "running")
            return True
        log.warning("%s: outputs of cell %s not saved: the notebook kept changing", path, run["cell_id"])
        return False
