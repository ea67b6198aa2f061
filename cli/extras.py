"""Optional parts of asl and the pip extra that installs each.

The base install assesses, explains and stores in SQLite. A feature that needs more
asks for its extra before it starts, and without it the command stops with one line
naming the extra (exit status 2, nothing done; `asl serve` checks its `serve` extra
itself, in the same words):

    asl: --executor dask needs the dask extra (dask is missing): pip install 'asl[dask]'
"""

from __future__ import annotations

import importlib

from cli.options import EXIT_REJECTED, fail

# extra -> the modules it provides that asl imports
EXTRAS = {
    "dask": ("dask", "distributed"),
    "postgres": ("psycopg",),
}


def missing(extra: str) -> str | None:
    """The first module of `extra` that cannot be imported, or None when all can."""
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            return module
    return None


def require(extra: str, feature: str) -> None:
    """Stop the command (exit 2, one line) when `feature` cannot run for want of `extra`."""
    absent = missing(extra)
    if absent is not None:
        fail(f"{feature} needs the {extra} extra ({absent} is missing): "
             f"pip install 'asl[{extra}]'", EXIT_REJECTED)
