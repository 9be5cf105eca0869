"""Deprecated private alias of :mod:`facebrain.errors` (kept for one release)."""

from facebrain.errors import *
from facebrain.errors import __all__, enospc_in_chain  # noqa: F401
