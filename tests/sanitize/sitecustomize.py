"""Makes `import hfport` load the sanitized build staged beside this file (`make test-sanitize`).

`make test-sanitize` links this file into build/sanitize/python/, next to a package folder
hfport/ holding links to python/hfport/*.py and the ASan/UBSan build of _hfport, and puts that
folder first on PYTHONPATH. PYTHONPATH alone is not enough: the editable install of `make dev`
(scikit-build-core) adds a finder at the front of sys.meta_path that answers for `hfport` and
`hfport._hfport` before sys.path is searched, so the tests would run the unsanitized module.

Python's `site` imports `sitecustomize` from sys.path at every start, after the .pth files (and so
after that finder) are in place. Here a finder goes in front of it, answering for hfport and its
submodules from the staged folder only. Subprocesses inherit PYTHONPATH and so the same import;
that matters for the tests that run a reader in a child process to survive a crash.

This shadows any other sitecustomize on sys.path for these runs; none of the test set needs one.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

# abspath, not realpath: the folder of the link (the staging folder), not of this source file.
STAGED = os.path.dirname(os.path.abspath(__file__))


class StagedHfportFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> ModuleSpec | None:
        if fullname == "hfport":
            spec = importlib.machinery.PathFinder.find_spec(fullname, [STAGED])
            if spec is None:
                raise ImportError(f"no staged hfport package in '{STAGED}'")
            return spec
        if fullname.startswith("hfport."):
            # `path` is the parent package's __path__, the staged folder: search only there.
            return importlib.machinery.PathFinder.find_spec(fullname, path)
        return None


sys.meta_path.insert(0, StagedHfportFinder())
