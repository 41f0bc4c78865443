"""A path pattern of paths.yaml compiled for rendering (``PathsConfig`` compiles each one when it is made)."""

from __future__ import annotations

import string


class PatternTemplate:
    """One path pattern as ``str.format`` reads it (``{{`` is a brace): its non-empty ``/`` segments as
    ``%``-templates, each segment's placeholder names, all names in order, and the segments joined."""

    __slots__ = ("joined", "names", "segment_names", "segments")

    def __init__(self, pattern: str) -> None:
        segments: list[str] = []
        segment_names: list[tuple[str, ...]] = []
        for seg in pattern.split("/"):
            if seg:
                pieces = list(string.Formatter().parse(seg))
                segments.append(
                    "".join(
                        text.replace("%", "%%") + ("" if name is None else f"%({name})s")
                        for text, name, _, _ in pieces
                    )
                )
                segment_names.append(tuple(name for _, name, _, _ in pieces if name is not None))
        self.segments = tuple(segments)
        self.segment_names = tuple(segment_names)
        self.names = tuple(dict.fromkeys(name for names in segment_names for name in names))
        self.joined = "/".join(segments)
