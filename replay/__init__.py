"""replay: replay-based shadow testing for LLM applications.

Kept import-light on purpose: ``replay --help`` must start fast, so heavy modules
(pandas, tiktoken, httpx) are imported only by the code paths that use them.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "open_store"]


def __getattr__(name: str) -> Any:
    """``replay.open_store`` (the notebook API, :mod:`replay.analysis`) is imported on first use:
    the CLI, which imports this package at every start, never pays for pandas or the store."""
    if name == "open_store":
        import importlib

        return importlib.import_module("replay.analysis").open_store  # the top layer, loaded by name
    raise AttributeError(f"module 'replay' has no attribute {name!r}")
