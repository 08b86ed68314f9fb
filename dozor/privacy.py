"""Personal data never reaches storage in the clear: plates become a keyed hash and a masked form."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["hash_plate", "mask_plate", "normalise_plate"]


def normalise_plate(plate: str) -> str:
    """Upper-case, no spaces or dashes, so '123 ABC 01' and '123abc01' hash alike."""
    return "".join(ch for ch in plate.upper() if ch.isalnum())


def hash_plate(plate: str, salt: str) -> str:
    """HMAC-SHA256 of the normalised plate: joinable across events, not reversible without the salt.

    A bare SHA-256 would be reversed by enumerating Kazakhstan's plate space (a few hundred million
    strings) in minutes; the secret salt is what prevents it.
    """
    return hmac.new(salt.encode(), normalise_plate(plate).encode(), hashlib.sha256).hexdigest()


def mask_plate(plate: str) -> str:
    """Keep the region code (last two characters) and the first character: '1*****01'."""
    p = normalise_plate(plate)
    if len(p) <= 3:
        return "*" * len(p)
    return p[0] + "*" * (len(p) - 3) + p[-2:]
