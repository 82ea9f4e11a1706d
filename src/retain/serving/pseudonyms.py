"""Pseudonymous customer ids for lists that leave the data team: a keyed HMAC-SHA256.

The same key gives the same pseudonym for a customer on every list, so lists stay comparable;
without the key the ids cannot be reversed or recomputed. The key comes from an environment
variable, never from a file in the repository.
"""

from __future__ import annotations

import hashlib
import hmac
import os

import pandas as pd

from retain.errors import ConfigError

__all__ = ["pseudonymize", "pseudonym_key"]

MIN_KEY_LENGTH = 16


def pseudonym_key(variable: str) -> bytes:
    """The key from the environment variable ``variable``.

    Raises
    ------
    ConfigError
        When the variable is unset or shorter than 16 characters.
    """
    key = os.environ.get(variable, "")
    if len(key) < MIN_KEY_LENGTH:
        raise ConfigError(
            f"--pseudonymize needs a secret key of at least {MIN_KEY_LENGTH} characters in the "
            f"environment variable {variable} (e.g. export {variable}=$(openssl rand -hex 32))"
        )
    return key.encode()


def pseudonymize(ids: pd.Series, key: bytes) -> pd.Series:
    """``hmac_sha256(key, id)`` as 32 hex characters, for every id."""

    def digest(value: object) -> str:
        return hmac.new(key, str(value).encode(), hashlib.sha256).hexdigest()[:32]

    return ids.map(digest)
