"""Stages: what drives the pure packages over a stored run (processes, threads, the store).

``replay.compare`` decides how two answers differ and knows nothing of where they are
kept; :mod:`replay.stages.compare` reads the pairs out of the store, compares them (on
worker processes when there are many), and stores the comparisons.
"""
