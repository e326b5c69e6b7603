"""Answer combinations the tests render, as data.

ALL is every combination of the answers that change which files are generated.
COVERING is a smaller set in which every pair of values still appears together
at least once; it runs by default, and the rest runs under the `slow` marker.
"""

from __future__ import annotations

import itertools

import pytest

AXES = {
    "proxy": ["nginx", "caddy", "load_balancer"],
    "settings_layout": ["split", "single"],
    "deployment": ["systemd", "compose"],
    "database": ["sqlite", "postgres"],
}

ALL = [dict(zip(AXES, values, strict=True)) for values in itertools.product(*AXES.values())]


def _pairs(combo: dict) -> set:
    return {((a, combo[a]), (b, combo[b])) for a, b in itertools.combinations(AXES, 2)}


def _pairwise_cover(combos: list[dict]) -> list[dict]:
    uncovered = set().union(*(_pairs(c) for c in combos))
    chosen = []
    while uncovered:
        best = max(combos, key=lambda c: len(_pairs(c) & uncovered))
        chosen.append(best)
        uncovered -= _pairs(best)
    return chosen


COVERING = _pairwise_cover(ALL)

# Django 6.1 runs on a newer Python; one project per settings layout proves it.
DJANGO_61 = [
    {"proxy": "nginx", "settings_layout": "split", "deployment": "systemd", "database": "sqlite",
     "django_version": "6.1"},
    {"proxy": "caddy", "settings_layout": "single", "deployment": "compose", "database": "postgres",
     "django_version": "6.1"},
]  # fmt: skip


def combo_id(answers: dict) -> str:
    return "-".join(str(answers[k]) for k in [*AXES, "django_version"] if k in answers)


def parametrize_combinations(argname: str = "answers"):
    """Covering combinations and Django 6.1 by default, the rest marked slow."""
    params = [pytest.param(c, id=combo_id(c)) for c in COVERING + DJANGO_61]
    params += [
        pytest.param(c, id=combo_id(c), marks=pytest.mark.slow) for c in ALL if c not in COVERING
    ]
    return pytest.mark.parametrize(argname, params)
