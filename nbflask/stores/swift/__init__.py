"""Notebooks in OpenStack Swift (or Rackspace Cloud Files): one store shared by many web hosts.

Layout in the container, under the optional `prefix`:

- a file is one object named by its API path (`dir/My Notebook.ipynb`), so `swift list` and
  `swift download` show the notebooks as they are;
- a directory is a pseudo-folder: objects share its `dir/` prefix, and a 0-byte marker object
  `dir/` (content type `application/directory`) makes an empty folder persist;
- checkpoints are objects `.nbflask_checkpoints/<path>/<id>` made by server-side COPY;
- a chunked upload in progress is segment objects `.nbflask_uploads/<path>/<chunk number>`.
  Both top-level names are reserved: the API refuses them and listings hide them.

The parts, each in its module:

- `store.py`: `SwiftStore`, the store contract: files and folders, moves and copies;
- `checkpoints.py`, `uploads.py`: its checkpoints and its chunked uploads;
- `objects.py`: the container as objects under the prefix, which those three build on;
- `layout.py`: object names and what their headers mean (times, etags), plain data;
- `client.py`: python-swiftclient connections: the pool, the shared token, timeouts and
  retries, and the translation of every failure into a store error.

Its options are `SwiftSettings` (`nbflask/config/settings.py`), checked with every setting.
"""

from .client import connection_options
from .layout import CHECKPOINTS, UPLOADS
from .store import SwiftStore

__all__ = ["CHECKPOINTS", "UPLOADS", "SwiftStore", "connection_options"]
