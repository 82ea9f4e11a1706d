"""The realised latent path of each customer, cut into pieces the event samplers walk.

Without retention campaigns a customer's life is one piece: engaged from birth, disengaging
from ``disengage_day``, dead from ``dropout_day``. A campaign can move a customer between
states at the midnight after a contact (a disengaging customer rescued, an engaged one pushed
away), so with campaigns a life is several pieces, each engaged until its ``switch_day`` and
disengaging from then until its ``stop_day`` (a pushed customer's piece is disengaging from
its start). Pieces of one customer follow each other without gaps until the final dropout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from retain.data._sim_latent import Population
from retain.data._sim_time import SECONDS_PER_DAY

__all__ = ["ENGAGED", "DISENGAGING", "DEAD", "LatentPath"]

ENGAGED, DISENGAGING, DEAD = 0, 1, 2


@dataclass(frozen=True)
class LatentPath:
    """Pieces of alive life (sorted by owner, then time) and each customer's final dropout.

    Attributes
    ----------
    owner : numpy.ndarray of int32
        Customer index of each piece, non-decreasing.
    begin_seconds : numpy.ndarray of int64
        Start of each piece (birth for a customer's first piece, else a midnight).
    switch_day, stop_day : numpy.ndarray of float64
        Midnight (in days) at which the piece turns disengaging (``inf``: never) and ends.
    disengage_day, dropout_day : numpy.ndarray of float64
        Per customer: the last entry into the disengaging state (``inf``: none) and death
        (either may lie after the end of history).
    n_days : int
        Days of history.
    simple : bool
        One piece per customer, piece ``i`` being customer ``i`` (no campaigns).
    """

    owner: np.ndarray
    begin_seconds: np.ndarray
    switch_day: np.ndarray
    stop_day: np.ndarray
    disengage_day: np.ndarray
    dropout_day: np.ndarray
    n_days: int
    simple: bool = False

    @classmethod
    def natural(cls, population: Population, n_days: int) -> LatentPath:
        """The path drawn with the population, untouched by campaigns: one piece each."""
        return cls(
            owner=np.arange(population.size, dtype=np.int32),
            begin_seconds=population.birth_seconds,
            switch_day=population.disengage_day,
            stop_day=np.minimum(population.dropout_day, n_days),
            disengage_day=population.disengage_day,
            dropout_day=population.dropout_day,
            n_days=n_days,
            simple=True,
        )

    @property
    def end_seconds(self) -> np.ndarray:
        """Per customer, the end of alive life in seconds: dropout or the end of history."""
        return np.minimum(self.dropout_day, self.n_days).astype(np.int64) * SECONDS_PER_DAY

    def per_piece(self, values: np.ndarray) -> np.ndarray:
        """A per-customer array, repeated for each piece."""
        return values if self.simple else values[self.owner]

    def customers(self, piece: np.ndarray) -> np.ndarray:
        """Customer index of each piece index."""
        return piece if self.simple else self.owner[piece]

    def piece_of(self, owner: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Index of the piece of ``owner`` in force at ``seconds`` (its last piece when dead)."""
        if self.simple:
            return owner
        keys = (self.owner.astype(np.int64) << 32) | self.begin_seconds
        wanted = (owner.astype(np.int64) << 32) | seconds
        return np.searchsorted(keys, wanted, side="right") - 1

    def state_at(self, owner: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        """Latent state (``ENGAGED``, ``DISENGAGING``, ``DEAD``) of ``owner`` at ``seconds``."""
        piece = self.piece_of(owner, seconds)
        dead = seconds >= self.dropout_day[owner] * SECONDS_PER_DAY
        disengaging = seconds >= self.switch_day[piece] * SECONDS_PER_DAY
        return np.where(dead, DEAD, np.where(disengaging, DISENGAGING, ENGAGED)).astype(np.int8)
