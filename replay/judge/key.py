"""What a verdict is cached under: a digest of everything that shapes it.

The judge's model and parameters, the prompt template and rubric, the request, and the
two answers in the order shown (so the swapped order is a verdict of its own). The same
pair judged again the same way, by ``replay judge``, a resumed run or a rerun with the
same answers, finds its verdict and pays nothing.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

KEY_VERSION = 1
"""Raised when what a key covers changes, so older verdicts are not taken for new ones."""


def verdict_key(model: str, params: dict[str, Any], template: str, rubric: str, request: dict[str, Any],
                answer_a: str, answer_b: str) -> str:  # fmt: skip
    blob = json.dumps(
        [KEY_VERSION, model, params, template, rubric, request, answer_a, answer_b],
        sort_keys=True, ensure_ascii=False, default=str, separators=(",", ":"),
    )  # fmt: skip
    return hashlib.blake2b(blob.encode("utf-8", "surrogatepass"), digest_size=20).hexdigest()
