"""Measurements as rows: a subject beside its baseline, their ratio and its target."""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

# Wall time of each part of the run, for the JSON: where a slow run spent its time.
PHASES: dict[str, float] = {}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@contextmanager
def phase(name: str) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        PHASES[name] = round(PHASES.get(name, 0) + time.monotonic() - started, 1)


def summary(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": [round(v, 6) for v in values],
    }


def row(row_id, what, baseline, unit, subject_values, baseline_values, op, target, **extra):
    """One row of the table: `op` is how the ratio must compare with `target` to meet it."""
    subject, base = summary(subject_values), summary(baseline_values)
    if base["median"] == 0:
        # A baseline that served nothing in the run (a peer swamped by 256 connections):
        # no ratio, and any throughput beats it.
        ratio, met = None, op == ">=" and subject["median"] > 0
    else:
        ratio = round(subject["median"] / base["median"], 3)
        met = ratio <= target if op == "<=" else ratio >= target
    return {
        "id": row_id,
        "what": what,
        "baseline": baseline,
        "unit": unit,
        "subject": subject,
        "baseline_stats": base,
        "ratio": ratio,
        "target": {"op": op, "value": target},
        "met": met,
        **extra,
    }


def interleaved(runs: int, *measures: Callable[[], float]) -> list[list[float]]:
    """Run each measure `runs` times, alternating, so drift hits every side alike."""
    results: list[list[float]] = [[] for _ in measures]
    for _ in range(runs):
        for values, measure in zip(results, measures, strict=True):
            values.append(measure())
    return results
