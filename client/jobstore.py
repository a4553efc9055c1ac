"""The consumer's local job store: what a submitted job needs to be finished later, with its key.

A paid result must outlive the call that submitted it (a timeout, a crash, a closed laptop). Right after the
exchange admits a job (the 201 gives its id) the SDK writes, under ``<root>/<job id>/``:

    job.json   the kind, grant, assets and the parameters needed to finish it (plan, bounds, ε; ids, logistic)
    key        the job's CKKS secret context (``ConsumerKeys.save``: mode 0600 from creation)

in a directory only its owner can enter (0700). ``root`` is ``Consumer(store=…)``, else ``$PDX_HOME/jobs``, else
``~/.pdx/jobs``. The one window left: the job is admitted (and charged) before the store is written; a crash in
between loses that job's key. The store is the consumer's to back up and to delete; nothing else reads it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from privacy.he import ConsumerKeys

DIRECTORY_MODE = 0o700
RECORD, KEY = "job.json", "key"


class JobNotStored(LookupError):
    """This store holds no job of that id (submitted elsewhere, or deleted)."""


def default_root() -> Path:
    """Return ``$PDX_HOME/jobs``, or ``~/.pdx/jobs`` without PDX_HOME."""
    home = os.environ.get("PDX_HOME")
    return (Path(home) if home else Path.home() / ".pdx") / "jobs"


class JobStore:
    """Jobs kept on the consumer's disk, one directory each."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()

    def save(self, job_id: str, record: dict[str, Any], keys: ConsumerKeys) -> Path:
        """Write a just-admitted job's record and key; return its directory."""
        self.root.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        folder = self._folder(job_id)
        folder.mkdir(mode=DIRECTORY_MODE)
        keys.save(folder / KEY)
        (folder / RECORD).write_text(json.dumps({"job_id": job_id, **record}, ensure_ascii=False, indent=1),
                                     encoding="utf-8")
        return folder

    def load(self, job_id: str) -> tuple[dict[str, Any], ConsumerKeys]:
        """Return a stored job's record and keys, raising ``JobNotStored`` if this store lacks it."""
        folder = self._folder(job_id)
        if not (folder / RECORD).is_file() or not (folder / KEY).is_file():
            raise JobNotStored(f"no job {job_id} in {self.root}: it was submitted with another store (PDX_HOME, "
                               f"Consumer(store=…)) or deleted")
        return json.loads((folder / RECORD).read_text(encoding="utf-8")), ConsumerKeys.load(folder / KEY)

    def _folder(self, job_id: str) -> Path:
        if not job_id or "/" in job_id or "\\" in job_id or job_id.startswith("."):
            raise JobNotStored(f"{job_id!r} is not a job id")
        return self.root / job_id
