"""Millions of ids in bounded memory: the duplicate check every read pays, and the batch readers'
index of answers by ``custom_id``.

A dict of id strings costs about 250 bytes an id once its value is a :class:`Location` or a tuple
(the string, the object, the entry): 1 GB of small records (two million ids) would take half a
gigabyte. Here the ids of the last :data:`WINDOW` records stay in a dict, exactly; older ones move,
a window at a time, into sorted numpy arrays of their 64-bit hash and a packed int (about 20 bytes
an id). numpy is imported only then: a log of fewer records never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

from replay.types import Location

if TYPE_CHECKING:
    import numpy as np

WINDOW = 1 << 15
"""Ids kept as strings before they move into the arrays."""
_MARKS = 1 << 23
"""Bytes of the filter in front of the arrays: an id whose hash's low bits are unmarked was never
moved there, and most new ids are answered without a search."""
_NUMBER_BITS = 38
_PATH_BITS = 23


def _check(record_id: str) -> int:
    """A second hash, independent of ``hash(record_id)``: two ids taken for one need both 64 and
    these 32 bits to collide (odds about n² / 2⁹⁷: none in practice)."""
    return hash(record_id + "\x00") & 0xFFFFFFFF


class SeenIds:
    """The ids read so far and where each was first read."""

    def __init__(self, window: int | None = None) -> None:
        self.window = window or WINDOW
        self.recent: dict[str, Location] = {}
        self.unpacked: dict[str, Location] = {}
        """Locations the packed int cannot hold (a line and an index both, a huge number), kept whole."""
        self.paths: dict[str, int] = {}
        self.names: list[str] = []
        self.marks: bytearray | None = None
        self.hashes: np.ndarray | None = None
        self.checks: np.ndarray | None = None
        self.places: np.ndarray | None = None

    def first(self, record_id: str, location: Location) -> Location | None:
        """Where ``record_id`` was read before, or None: then it is remembered as read at ``location``."""
        found = self.recent.get(record_id)
        if found is not None:
            return found
        if self.marks is not None:
            key = hash(record_id)
            if self.marks[key & (_MARKS - 1)]:
                found = self.unpacked.get(record_id) or self._moved(record_id, key)
                if found is not None:
                    return found
        self.recent[record_id] = location
        if len(self.recent) >= self.window:
            self._move()
        return None

    def _moved(self, record_id: str, key: int) -> Location | None:
        assert self.hashes is not None and self.checks is not None and self.places is not None
        check = _check(record_id)
        index = int(self.hashes.searchsorted(key))
        while index < len(self.hashes) and self.hashes[index] == key:
            if self.checks[index] == check:
                return self._unpack(int(self.places[index]))
            index += 1
        return None

    def _move(self) -> None:
        import numpy as np

        if self.marks is None:
            self.marks = bytearray(_MARKS)
        ids = list(self.recent)
        places = self._packed(ids)
        count = len(ids)
        hashes = np.fromiter(map(hash, ids), np.int64, count)
        np.frombuffer(self.marks, np.uint8)[hashes & (_MARKS - 1)] = 1
        checks = (np.fromiter((hash(record_id + "\x00") for record_id in ids), np.int64, count) & 0xFFFFFFFF).astype(np.uint32)
        order = hashes.argsort(kind="stable")  # checks: _check's bits, computed in bulk
        hashes, checks, places_column = hashes[order], checks[order], np.array(places, np.int64)[order]
        if self.hashes is None or self.checks is None or self.places is None:
            self.hashes, self.checks, self.places = hashes, checks, places_column
        else:  # a column at a time, each old one dropped as its successor is made: at most one extra column
            at = self.hashes.searchsorted(hashes, side="right")  # after equal hashes: older entries first
            self.hashes = np.insert(self.hashes, at, hashes)
            self.checks = np.insert(self.checks, at, checks)
            self.places = np.insert(self.places, at, places_column)
        self.recent = {}

    def _packed(self, ids: list[str]) -> list[int]:
        """The window's locations packed, the usual one (a line of a file already numbered) inline;
        one the int cannot hold is kept whole in ``unpacked`` (packed as -1)."""
        places: list[int] = []
        add, numbers, line_kind = places.append, self.paths, 1 << _NUMBER_BITS
        for record_id, location in self.recent.items():
            line, path = location.line, numbers.get(location.path)
            if path is not None and location.index is None and type(line) is int and 0 <= line < line_kind:
                add(path << (_NUMBER_BITS + 2) | line_kind | line)
                continue
            place = self._pack(location)
            if place is None:
                self.unpacked[record_id] = location
            add(-1 if place is None else place)
        return places

    def _pack(self, location: Location) -> int | None:
        line, index = location.line, location.index
        if line is not None and index is not None:
            return None
        kind, number = (1, line) if line is not None else (2, index) if index is not None else (0, 0)
        if not isinstance(number, int) or not 0 <= number < 1 << _NUMBER_BITS:
            return None
        path = self.paths.get(location.path)
        if path is None:
            if len(self.names) >= 1 << _PATH_BITS:
                return None
            path = self.paths[location.path] = len(self.names)
            self.names.append(location.path)
        return path << (_NUMBER_BITS + 2) | kind << _NUMBER_BITS | number

    def _unpack(self, place: int) -> Location | None:
        if place < 0:
            return None  # kept whole in ``unpacked``, looked up first
        path = self.names[place >> (_NUMBER_BITS + 2)]
        kind, number = place >> _NUMBER_BITS & 3, place & ((1 << _NUMBER_BITS) - 1)
        return Location(path, number if kind == 1 else None, number if kind == 2 else None)


class HashIndex:
    """Ints by string key, found by the key's 64-bit hash: ``candidates`` may hold another key's
    entry, which the caller tells apart (the batch readers read the line back and compare).
    Built once (``add`` then ``freeze``), then only read."""

    def __init__(self) -> None:
        from array import array

        self._hashes = array("q")
        self._values = array("q")
        self.hashes: np.ndarray | None = None
        self.values: np.ndarray | None = None

    def add(self, key: str, value: int) -> None:
        self._hashes.append(hash(key))
        self._values.append(value)

    def freeze(self) -> HashIndex:
        import numpy as np

        hashes = np.frombuffer(self._hashes, np.int64)
        order = hashes.argsort(kind="stable")  # among equal hashes, the order added
        self.hashes = hashes[order]
        del hashes
        self.values = np.frombuffer(self._values, np.int64)[order]
        self._hashes, self._values = type(self._hashes)("q"), type(self._values)("q")
        return self

    def __len__(self) -> int:
        return 0 if self.hashes is None else len(self.hashes)

    def candidates(self, key: str) -> Iterator[int]:
        """The values added under ``key``'s hash, in the order they were added."""
        if self.hashes is None or not len(self.hashes):
            return
        wanted = hash(key)
        index = int(self.hashes.searchsorted(wanted))
        while index < len(self.hashes) and self.hashes[index] == wanted:
            yield int(self.values[index])  # type: ignore[index]
            index += 1
