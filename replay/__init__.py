"""replay: replay-based shadow testing for LLM applications.

Kept import-light on purpose: ``replay --help`` must start fast, so heavy modules
(pandas, tiktoken, httpx) are imported only by the code paths that use them.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
