"""Make this checkout importable as ``ansible_collections.jram.dumphost``.

ansible.cfg resolves the collection through ``.collections``; when that link does not lead back
to this checkout, the tests link it themselves in a private directory removed at exit."""

from __future__ import annotations

import atexit
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _collection_root() -> str:
    local = REPO / ".collections"
    if (local / "ansible_collections/jram/dumphost/galaxy.yml").resolve() == REPO / "galaxy.yml":
        return str(local)
    root = Path(tempfile.mkdtemp(prefix="jram-collections-"))
    atexit.register(shutil.rmtree, root, True)
    (root / "ansible_collections" / "jram").mkdir(parents=True)
    (root / "ansible_collections" / "jram" / "dumphost").symlink_to(REPO)
    return str(root)


ROOT = _collection_root()
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
