"""Rules of ``customers.referred_by``: who referred whom must make sense as a history.

A referral names the customer who brought another one. Four rules, checked once ``customers``
and ``transactions`` are read without problems (they need both: a referrer may be known from
transactions only, and a customer's first transaction tells when they bought first):

1. the referrer is a known customer (in ``customers`` or ``transactions``);
2. nobody refers themselves;
3. the referrer was a customer by the time the referral could have happened, by day: a
   customer is one *from* the earlier of ``signup_date`` and the first transaction, and a
   referral is credited at the signup or at the first purchase, so it may come as late as the
   later of the two (*by*). The referrer's *from* must not be after the referred customer's
   *by* (a customer with neither date is not judged). So customers who joined the same day
   may refer each other, and an account opened long ago may be referred to its first order;
4. referrals form no cycle (A referred by B, B by A): somebody must have come first.

Each broken rule is one :class:`~retain.errors.DataProblem` of column ``referred_by``, with
the rows counted and a few examples.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from retain.data.dictionaries import KEY, decoded, one_dictionary
from retain.errors import MAX_SAMPLES, DataProblem, quote

__all__ = ["REFERRER", "referral_problems"]

#: The column of ``customers`` naming the referrer.
REFERRER = "referred_by"
#: Links of a referral cycle spelt out in its problem.
SHOWN_LINKS = 6


def referral_problems(customers: pa.Table, transactions: pa.Table, file: str) -> list[DataProblem]:
    """Check ``referred_by`` of checked ``customers`` against the customers and buyers.

    Parameters
    ----------
    customers : pyarrow.Table
        Checked customers (unique ids, plain or dictionary-coded), with ``signup_date`` and
        ``referred_by``.
    transactions : pyarrow.Table
        Checked transactions (their buyers are known customers, and a customer's first
        transaction is one of the days that place the customer in time).
    file : str
        The customers file, named in the problems.

    Returns
    -------
    list of DataProblem
        One per broken rule (see the module), in the order of the rules; empty when the
        column is absent or every referral makes sense.
    """
    referrers = customers.column(REFERRER).combine_chunks()
    if referrers.null_count == len(referrers):
        return []
    if pa.types.is_dictionary(referrers.type):
        referrers = referrers.cast(referrers.type.value_type)
    listed = decoded(customers, [KEY]).column(KEY).combine_chunks()
    known, since, by = _known_customers(listed, customers.column("signup_date"), transactions)
    referrer = pc.index_in(referrers, value_set=known)
    named = pc.is_valid(referrers).to_numpy(zero_copy_only=False)
    found = pc.is_valid(referrer).to_numpy(zero_copy_only=False)
    target = referrer.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    own = np.arange(len(listed), dtype=np.int64)

    problems = []
    unknown = named & ~found
    if unknown.any():
        problems.append(
            _problem(
                file,
                "names no known customer (in neither customers nor transactions)",
                unknown,
                referrers.take(_first(unknown)).to_pylist(),
            )
        )
    themselves = found & (target == own)
    if themselves.any():
        problems.append(
            _problem(
                file,
                "the customer is named as their own referrer",
                themselves,
                listed.take(_first(themselves)).to_pylist(),
            )
        )
    linked = found & ~themselves
    later = np.zeros(len(listed), dtype=bool)
    later[linked] = since[target[linked]] > by[own[linked]]  # NaT compares False
    if later.any():
        examples = [
            f"{known[target[row]].as_py()} (from {since[target[row]]}) referred "
            f"{listed[row].as_py()} (by {by[row]})"
            for row in _first(later)
        ]
        problems.append(
            _problem(
                file,
                "the referrer became a customer (from the earlier of signup_date and first "
                "transaction) after the customer referred had signed up and bought (by the "
                "later of the two)",
                later,
                examples,
            )
        )
    cycle = _cycle_problem(file, target, linked, known)
    if cycle is not None:
        problems.append(cycle)
    return problems


def _known_customers(
    listed: pa.Array, signups: pa.ChunkedArray, transactions: pa.Table
) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Every known id (the listed customers, then buyers not among them), and per id the day
    of the earlier and of the later of its signup and first transaction (``datetime64[D]``; one
    of them when the other is missing, NaT when both are)."""
    listed = listed.cast(pa.string())
    signup = _days(signups)
    first = np.full(len(listed), np.datetime64("NaT"), dtype="datetime64[D]")
    buyers = one_dictionary(transactions.column(KEY))
    known = listed
    if buyers.num_chunks:
        values = buyers.chunk(0).dictionary.cast(pa.string())
        codes = pa.chunked_array([chunk.indices for chunk in buyers.chunks], pa.int32())
        firsts = (
            pa.table({"code": codes, "timestamp": transactions.column("timestamp")})
            .group_by("code")
            .aggregate([("timestamp", "min")])
        )
        first_day = np.full(len(values), np.datetime64("NaT"), dtype="datetime64[D]")
        first_day[firsts.column("code").to_numpy()] = _days(firsts.column("timestamp_min"))
        found = pc.index_in(values, value_set=listed).fill_null(-1).to_numpy(zero_copy_only=False)
        among = found >= 0
        first[found[among]] = first_day[among]
        known = pa.concat_arrays([listed, values.filter(pa.array(~among))])
        signup = np.concatenate([signup, np.full((~among).sum(), np.datetime64("NaT"), "M8[D]")])
        first = np.concatenate([first, first_day[~among]])
    # the later or earlier of the two days, the one known where the other is missing
    earlier = np.where(np.isnat(signup) | (first < signup), first, signup)
    later = np.where(np.isnat(signup) | (first > signup), first, signup)
    return known, earlier, later


def _days(times: pa.ChunkedArray) -> np.ndarray:
    """Timestamps as days (``datetime64[D]``, NaT where missing)."""
    values = times.combine_chunks() if isinstance(times, pa.ChunkedArray) else times
    return values.to_numpy(zero_copy_only=False).astype("datetime64[D]")


def _cycle_problem(
    file: str, target: np.ndarray, linked: np.ndarray, known: pa.Array
) -> DataProblem | None:
    """Customers on a referral cycle, with one cycle spelt out.

    Each customer has at most one referrer, so following referrers from anyone either ends
    (at a customer without one) or runs into a cycle. After ``2**k >= n`` steps, taken by
    doubling, everyone whose path does not end stands on a cycle, and every customer of a
    cycle is where some customer of it stands.
    """
    size = len(known)
    if not linked.any():
        return None
    end = size  # where a path without a next referrer rests
    step = np.full(size + 1, end, dtype=np.int64)
    listed = len(linked)
    step[:listed][linked] = target[linked]
    parent = step.copy()
    for _ in range(max(1, int(np.ceil(np.log2(size + 1))))):
        step = step[step]
    on_cycles = np.unique(step[:size][step[:size] != end])
    if not len(on_cycles):
        return None
    first = int(on_cycles.min())  # the earliest row of the customers table on a cycle
    links = [first]
    while len(links) <= SHOWN_LINKS and parent[links[-1]] != first:
        links.append(int(parent[links[-1]]))
    names = [quote(known[node].as_py()) for node in links]
    closing = names[0] if parent[links[-1]] == first else "..."
    referrers = [*names[1:], closing]
    spelt = ", ".join(
        f"{name} by {referrer}" for name, referrer in zip(names, referrers, strict=True)
    )
    problem = (
        f"referrals go round in a cycle: {spelt.replace(' by ', ' referred by ', 1)} "
        f"({len(on_cycles):,} customers on cycles); somebody must have been first"
    )
    mask = np.zeros(listed, dtype=bool)
    mask[on_cycles[on_cycles < listed]] = True
    samples = [known[node].as_py() for node in np.sort(on_cycles)[:MAX_SAMPLES]]
    return DataProblem(
        "customers", file, REFERRER, problem, rows=int(mask.sum()), samples=tuple(samples)
    )


def _first(rows: np.ndarray) -> np.ndarray:
    """Positions of the first rows of ``rows`` (enough for distinct samples)."""
    return np.flatnonzero(rows)[: 10 * MAX_SAMPLES]


def _problem(file: str, problem: str, rows: np.ndarray, values: list) -> DataProblem:
    """A problem of the rows ``rows``, with the first distinct ``values`` as samples."""
    samples = tuple(dict.fromkeys(values))[:MAX_SAMPLES]
    return DataProblem("customers", file, REFERRER, problem, rows=int(rows.sum()), samples=samples)
