"""Time in the simulated world: seasonality, time of day, and inhomogeneous Poisson sampling.

Times are float days since the world's first midnight. An event process has intensity
``rate_i * m(state) * s(day) * h(time of day)``, where ``s`` is the deterministic daily
seasonality and ``h`` the diurnal profile (integrating to one over a day). Warping each day
by the diurnal CDF ("clock time") turns ``h`` into a constant, so in clock time the intensity
is piecewise constant per day and its integral is a cumulative sum over days. Midnights are
fixed points of the warp, so daily expectations (what the oracle needs) involve only ``s``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "SECONDS_PER_DAY",
    "DiurnalClock",
    "DailyIntensity",
    "sample_events",
    "seasonality",
]

SECONDS_PER_DAY = 86_400
_YEAR_DAYS = 365.25
_HOURS = np.arange(25, dtype=np.float64)


def _yearly_profile(day_of_year: np.ndarray, bumps: list[Mapping[str, float]]) -> np.ndarray:
    """Un-normalised yearly factor: one plus Gaussian bumps on the circular day of year."""
    profile = np.ones(day_of_year.shape, dtype=np.float64)
    for bump in bumps:
        offset = np.abs(day_of_year - (bump["day_of_year"] - 1)) % _YEAR_DAYS
        distance = np.minimum(offset, _YEAR_DAYS - offset)
        profile += bump["height"] * np.exp(-0.5 * (distance / bump["width_days"]) ** 2)
    return profile


def seasonality(days: np.ndarray, params: Mapping[str, Any]) -> np.ndarray:
    """Deterministic daily seasonality ``s(d) = weekly(weekday) * yearly(day of year)``.

    Each factor is normalised to mean one (the weekly one over a week, the yearly one over
    365 days), so ``s`` averages one over whole years.

    Parameters
    ----------
    days : array of datetime64
        Calendar days (any datetime64 unit; truncated to days).
    params : mapping
        The ``seasonality`` section of the world parameters (``weekly``, ``yearly_bumps``).

    Returns
    -------
    numpy.ndarray
        Seasonal multiplier per day, float64.
    """
    days = np.asarray(days).astype("datetime64[D]")
    weekly = np.asarray(params["weekly"], dtype=np.float64)
    weekly = weekly / weekly.mean()
    weekday = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday; Monday is 0
    day_of_year = (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.float64)
    bumps = params["yearly_bumps"]
    yearly_mean = _yearly_profile(np.arange(365, dtype=np.float64), bumps).mean()
    return weekly[weekday] * _yearly_profile(day_of_year, bumps) / yearly_mean


@dataclass(frozen=True)
class DiurnalClock:
    """Warp of each day by the CDF of an hourly activity profile (midnights stay fixed)."""

    cdf: np.ndarray  # 25 increasing values from 0 to 1 at the hours 0..24
    hour_lookup: np.ndarray  # hour containing the clock fraction b / (size - 1)
    second_offset: np.ndarray  # per hour: seconds = second_offset + fraction * second_slope
    second_slope: np.ndarray

    @classmethod
    def from_hourly(cls, weights: list[float]) -> DiurnalClock:
        """Build the clock from 24 positive hourly weights."""
        hourly = np.asarray(weights, dtype=np.float64)
        if hourly.shape != (24,) or np.any(hourly <= 0):
            raise ValueError("the diurnal profile needs 24 positive hourly weights")
        cdf = np.concatenate(([0.0], np.cumsum(hourly) / hourly.sum()))
        # Look-up buckets narrower than any hour: one table read and one comparison per event
        # instead of a binary search.
        buckets = int(np.ceil(2.0 / np.diff(cdf).min()))
        edges = np.arange(buckets + 1) / buckets
        hour_lookup = np.clip(np.searchsorted(cdf, edges, side="right") - 1, 0, 23).astype(np.int32)
        slope = 3600.0 / np.diff(cdf)
        return cls(cdf, hour_lookup, np.arange(24) * 3600.0 - cdf[:-1] * slope, slope)

    def to_clock(self, days: np.ndarray) -> np.ndarray:
        """Real time (days) to clock time (days)."""
        whole = np.floor(days)
        return whole + np.interp((days - whole) * 24.0, _HOURS, self.cdf)

    def seconds_of_day(self, clock_fraction: np.ndarray) -> np.ndarray:
        """Whole seconds after midnight for fractions of a day in clock time."""
        buckets = self.hour_lookup.size - 1
        hour = self.hour_lookup[np.minimum(clock_fraction * buckets, buckets).astype(np.int32)]
        hour += clock_fraction >= self.cdf[1:][hour]
        np.minimum(hour, 23, out=hour)
        seconds = self.second_slope[hour]
        seconds *= clock_fraction
        seconds += self.second_offset[hour]
        seconds += 1e-6  # float error must not move an event a second earlier
        np.floor(seconds, out=seconds)
        np.clip(seconds, 0, SECONDS_PER_DAY - 1, out=seconds)
        return seconds.astype(np.int64)

    def draw_time_of_day(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """Fractions of a day distributed as the hourly profile."""
        return np.interp(rng.random(size), self.cdf, _HOURS) / 24.0


@dataclass(frozen=True)
class DailyIntensity:
    """A positive intensity that is constant within each day, and its cumulative integral."""

    daily: np.ndarray  # intensity on day k (k = 0 .. n_days - 1)
    cumulative: np.ndarray  # integral up to midnight k (k = 0 .. n_days)
    bucket_width: float
    bucket_day: np.ndarray  # day containing the cumulative value bucket_width * b

    @classmethod
    def from_daily(cls, daily: np.ndarray) -> DailyIntensity:
        """Build from the per-day intensity (all values must be positive)."""
        daily = np.asarray(daily, dtype=np.float64)
        if daily.size == 0 or np.any(daily <= 0):
            raise ValueError("a daily intensity needs at least one day and positive values")
        cumulative = np.concatenate(([0.0], np.cumsum(daily)))
        # Buckets narrower than any day hold at most one midnight, so inverting costs one
        # table look-up and one comparison instead of a binary search per event.
        width = 0.5 * float(daily.min())
        edges = np.arange(int(cumulative[-1] / width) + 2) * width
        bucket_day = np.searchsorted(cumulative, edges, side="right") - 1
        bucket_day = np.clip(bucket_day, 0, daily.size - 1).astype(np.int64)
        return cls(daily, cumulative, width, bucket_day)

    @property
    def n_days(self) -> int:
        """Number of days covered."""
        return self.daily.size

    def integral(self, days: np.ndarray) -> np.ndarray:
        """Integral of the intensity from day 0 to ``days`` (clipped to the covered range)."""
        days = np.clip(days, 0.0, float(self.n_days))
        whole = np.minimum(days.astype(np.int64), self.n_days - 1)
        return self.cumulative[whole] + self.daily[whole] * (days - whole)

    def locate(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Invert :meth:`integral`: the day, and the fraction of it, where ``values`` is reached."""
        np.clip(values, 0.0, self.cumulative[-1], out=values)
        bucket = (values / self.bucket_width).astype(np.int64)
        np.minimum(bucket, self.bucket_day.size - 1, out=bucket)
        day = self.bucket_day[bucket]
        del bucket
        day += values >= self.cumulative[1:][day]
        np.minimum(day, self.n_days - 1, out=day)
        values -= self.cumulative[day]
        values /= self.daily[day]
        return day, values


def _spacings(
    rng: np.random.Generator, counts: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Increasing positions per owner from exponential spacings (avoids sorting millions).

    Each owner gets ``counts + 1`` consecutive slots: its events, then a terminator. Positions
    are cumulative sums of standard exponentials restarted per owner; divided by the owner's
    terminator position they are the order statistics of ``counts`` uniforms.

    Returns
    -------
    owner : numpy.ndarray of int32
        Owner of each slot.
    position : numpy.ndarray of float64
        Cumulative spacing of each slot within its owner (the terminator's is the total).
    terminator : numpy.ndarray of int64
        Index of each owner's terminator slot.
    """
    slots = counts.astype(np.int64) + 1
    terminator = np.cumsum(slots) - 1
    owner = np.repeat(np.arange(counts.size, dtype=np.int32), slots)
    spacing = rng.standard_exponential(int(terminator[-1]) + 1, dtype=np.float32)
    position = np.cumsum(spacing, dtype=np.float64)  # float64: sums reach millions
    del spacing
    before = np.zeros(counts.size, dtype=np.float64)
    before[1:] = position[terminator[:-1]]
    position -= before[owner]
    return owner, position, terminator


def sample_events(
    rng: np.random.Generator,
    intensity: DailyIntensity,
    clock: DiurnalClock,
    rate_engaged: np.ndarray,
    rate_disengaged: np.ndarray,
    begin_seconds: np.ndarray,
    switch_days: np.ndarray,
    stop_days: np.ndarray,
    *,
    event_at_begin: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample an inhomogeneous Poisson process per owner, two rate regimes, sorted per owner.

    The intensity is ``rate_engaged * s(t) * h(t)`` on ``[begin, switch)`` and
    ``rate_disengaged * s(t) * h(t)`` on ``[switch, stop)``. Counts are Poisson with the
    integrated intensity; given the count, times are order statistics of uniforms on the
    integrated-intensity scale, mapped back by inverting the cumulative intensity.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random source.
    intensity : DailyIntensity
        Daily seasonality ``s`` (use a flat one for non-seasonal processes).
    clock : DiurnalClock
        Time-of-day profile ``h``.
    rate_engaged, rate_disengaged : numpy.ndarray
        Per-owner positive rates per day in each regime.
    begin_seconds : numpy.ndarray of int64
        Start of each owner's interval, in whole seconds since the world's start.
    switch_days, stop_days : numpy.ndarray
        Regime switch and end of the interval, at midnights (days; ``inf`` switch = never).
    event_at_begin : bool, default=False
        Also emit one event exactly at ``begin`` (first in each owner's sequence).

    Returns
    -------
    owner : numpy.ndarray of int32
        Owner of each event, ascending.
    seconds : numpy.ndarray of int64
        Event times in seconds since the world's start, ascending within each owner and
        within ``[begin, stop)``.
    """
    if begin_seconds.size == 0:
        return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
    clock_begin = clock.to_clock(begin_seconds / SECONDS_PER_DAY)
    stop_days = np.asarray(stop_days, dtype=np.float64)
    switch_days = np.clip(switch_days, clock_begin, stop_days)
    level_begin = intensity.integral(clock_begin)
    level_switch = intensity.integral(switch_days)
    mass_engaged = rate_engaged * (level_switch - level_begin)
    mass_total = mass_engaged + rate_disengaged * (intensity.integral(stop_days) - level_switch)
    counts = rng.poisson(mass_total)

    owner, position, terminator = _spacings(rng, counts)
    # Per owner and regime, the cumulative intensity is linear in the position:
    # level = intercept + position * slope (two entries per owner, indexed 2 * owner + regime).
    # float32 spacings can be exactly zero; an owner whose spacings all are has no events.
    total = position[terminator]
    scale = np.divide(mass_total, total, out=np.zeros_like(total), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.stack([scale / rate_engaged, scale / rate_disengaged], axis=1).ravel()
        intercept = np.stack(
            [level_begin, level_switch - mass_engaged / rate_disengaged], axis=1
        ).ravel()
        switch_position = mass_engaged / scale
    regime = owner.astype(np.int64)
    regime *= 2
    regime += position >= switch_position[owner]
    position *= slope[regime]
    position += intercept[regime]
    del regime
    day, fraction = intensity.locate(position)
    del position
    seconds = clock.seconds_of_day(fraction)
    del fraction
    day *= SECONDS_PER_DAY
    seconds += day
    del day
    np.maximum(seconds, begin_seconds[owner], out=seconds)
    stop_seconds = stop_days.astype(np.int64) * SECONDS_PER_DAY - 1
    np.minimum(seconds, stop_seconds[owner], out=seconds)

    if event_at_begin:
        # Shifting every slot right by one moves each owner's events behind its first slot
        # (terminators fall on the next owner's first slot), which becomes the begin event.
        shifted = np.empty_like(seconds)
        shifted[1:] = seconds[:-1]
        shifted[terminator - counts] = begin_seconds
        return owner, shifted
    keep = np.ones(seconds.size, dtype=bool)
    keep[terminator] = False
    return owner[keep], seconds[keep]
