"""Stable seeds derived from ids, so a re-run of any step writes the same bytes."""

import hashlib


def seed_for(*parts: object) -> int:
    """A positive 31-bit seed from the parts (never 0: OpenMM reads 0 as "pick one at random")."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") % (2**31 - 1) + 1
