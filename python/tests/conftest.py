"""Puts Gymnasium 1.4.0's source (not packaged by Debian) on the import path before any test
imports prunegym_client, so the client's classes are Gymnasium's. Found in
$PRUNEGYM_GYMNASIUM_PATH or in ../shared/third_party beside the repository (as CI lays it out).
test_gymnasium.py also checks the client on numpy alone, in a subprocess without it."""

import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
_candidates = [os.environ.get("PRUNEGYM_GYMNASIUM_PATH", ""), str(ROOT.parent / "shared" / "third_party")]
GYMNASIUM_PATH = next((c for c in _candidates if c and (pathlib.Path(c) / "gymnasium" / "__init__.py").exists()), None)
if GYMNASIUM_PATH and GYMNASIUM_PATH not in sys.path:
    sys.path.insert(0, GYMNASIUM_PATH)
