"""Semantic similarity: what text of an answer is embedded, and the cosine of two vectors.

Pure and light (numpy only): the embeddings stage (:mod:`replay.stages.embeddings`) sends
the texts and stores the vectors, the metric reads the cosines.
"""

from replay.embeddings.texts import EMPTY_DIGEST, MAX_CHARS, answer_text, stored_answer_text, text_digest
from replay.embeddings.vectors import cosines, pair_cosine

__all__ = ["EMPTY_DIGEST", "MAX_CHARS", "answer_text", "cosines", "pair_cosine", "stored_answer_text", "text_digest"]
