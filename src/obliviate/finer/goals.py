"""The goals of patterns B and C that a user would ship against (issue 25).

- Pattern B (backdoor): ``D_r`` within :data:`GOAL_RETAIN_DROP` points of the pretrained
  model, ``D_f,clean`` at least :data:`GOAL_KEPT_ACC`, ``D_r,extra`` at least
  :data:`GOAL_EXTRA_ACC` (%).
- Pattern C (leakage): the same with ``D_f`` in place of ``D_f,clean``.

:func:`pattern_goals` says which a model met; :func:`validation_targets` turns them into the
per-set accuracy targets (0-1) that the goal-aware calibration aims at on validation data.
"""

from __future__ import annotations

from obliviate.errors import ObliviateError

GOAL_RETAIN_DROP = 3.0
GOAL_KEPT_ACC = 90.0
GOAL_EXTRA_ACC = 60.0


def kept_set(pattern: str) -> str:
    """The set a pattern must keep recognised: ``D_f,clean`` (B) or ``D_f`` (C)."""
    if pattern not in ("B", "C"):
        raise ObliviateError(f"the goals cover patterns B and C, not {pattern!r}")
    return "D_f,clean" if pattern == "B" else "D_f"


def pattern_goals(pattern: str, before: dict[str, float], after: dict[str, float], *,
                  kept_goal: float = GOAL_KEPT_ACC) -> dict[str, bool]:  # fmt: skip
    """Each goal of pattern B or C, named with its number, and whether ``after`` meets it
    (accuracies in %; ``before`` is the pretrained model's). ``kept_goal`` replaces the kept
    set's :data:`GOAL_KEPT_ACC`, e.g. by a retrained model's accuracy on it less a margin.

    Example:
        >>> pattern_goals("C", {"D_r": 85.0}, {"D_r": 82.0, "D_f": 95.0, "D_r,extra": 59.9})
        {'D_r within 3 points of 85.0': True, 'D_f ≥ 90': True, 'D_r,extra ≥ 60': False}
    """
    kept = kept_set(pattern)
    return {
        f"D_r within {GOAL_RETAIN_DROP:g} points of {before['D_r']:.1f}":
            after["D_r"] >= before["D_r"] - GOAL_RETAIN_DROP,
        f"{kept} ≥ {kept_goal:g}": after[kept] >= kept_goal,
        f"D_r,extra ≥ {GOAL_EXTRA_ACC:g}": after["D_r,extra"] >= GOAL_EXTRA_ACC,
    }  # fmt: skip


def validation_targets(pattern: str, pretrained_retain: float) -> dict[str, float]:
    """The goals as accuracy targets (0-1) per validation set, given the pretrained model's
    accuracy (0-1) on the same ``D_r`` validation samples."""
    return {"D_r": pretrained_retain - GOAL_RETAIN_DROP / 100,
            kept_set(pattern): GOAL_KEPT_ACC / 100, "D_r,extra": GOAL_EXTRA_ACC / 100}  # fmt: skip
