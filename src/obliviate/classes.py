"""Class names: what a model's class indices mean, checked wherever data or another model
meets it, and the names a caller may give instead of indices."""

from __future__ import annotations

import re
from collections.abc import Sequence

from obliviate.checkpoint import ModelBundle, class_names_problem
from obliviate.data import Dataset
from obliviate.errors import ObliviateError


def check_class_names(bundle: ModelBundle, data: Dataset | ModelBundle) -> None:
    """Refuse data (or another model) whose classes are named otherwise than ``bundle``'s:
    its labels would mean other classes (a renamed or added image-folder class shifts every
    index after it). Nothing is compared when either side has no names.

    Raises:
        ObliviateError: naming the first class whose names differ.
    """
    mine, theirs = list(bundle.class_names or ()), list(data.class_names or ())
    if not mine or not theirs or mine == theirs:
        return
    index = next(i for i in range(max(len(mine), len(theirs)))
                 if mine[i:i + 1] != theirs[i:i + 1])  # fmt: skip
    own = repr(mine[index]) if index < len(mine) else "absent"
    other = repr(theirs[index]) if index < len(theirs) else "absent"
    if isinstance(data, ModelBundle):
        raise ObliviateError(f"the other model's class {index} is {other} but this model's class "
                             f"{index} is {own}: the two models name their classes differently; "
                             "give models trained on the same data")  # fmt: skip
    raise ObliviateError(f"the data's class {index} is {other} but the model's class {index} is "
                         f"{own}: its labels mean other classes (renamed or added class "
                         "folders?); use the data the model was trained on")  # fmt: skip


def dataset_class_names(data: Dataset) -> list[str] | None:
    """``data``'s class names as a model file records them; ``None`` when it has none.

    Raises:
        ObliviateError: they are not one distinct string per class.
    """
    if not data.class_names:
        return None
    problem = class_names_problem(data.class_names, data.num_classes)
    if problem is not None:
        raise ObliviateError(f"dataset {data.name}: {problem}; give one distinct name per class "
                             "(or none)")  # fmt: skip
    return list(data.class_names)


def resolve_classes(bundle: ModelBundle, classes: Sequence[int | str]) -> list[int]:
    """Class indices of ``classes``, each an index (``3`` or ``"3"``: an integer string is
    always an index) or one of the model's class names (exact, else the one name equal to it
    ignoring case).

    Raises:
        ObliviateError: an index out of range, or a name the model does not have (the
            message lists its names).
    """
    names = list(bundle.class_names or ())
    out = []
    for c in classes:
        if isinstance(c, str):
            text = c.strip()
            if re.fullmatch(r"-?[0-9]+", text):
                c = int(text)
            elif text in names:
                c = names.index(text)
            else:
                folded = [i for i, n in enumerate(names) if n.casefold() == text.casefold()]
                if len(folded) != 1:
                    span = f"0..{bundle.num_classes - 1}"
                    if not names:
                        raise ObliviateError(f"class {c!r} is not an integer index ({span}), and "
                                             "this model file records no class names")  # fmt: skip
                    if names == [str(i) for i in range(len(names))]:
                        raise ObliviateError(f"class {c!r} is not an integer index ({span})")
                    raise ObliviateError(f"class {c!r} is not an integer index ({span}) or a "
                                         "class name of this model: "
                                         f"{', '.join(repr(n) for n in names)}")  # fmt: skip
                c = folded[0]
        try:
            is_int = not isinstance(c, bool) and int(c) == c
        except (TypeError, ValueError):
            is_int = False
        if not is_int:
            raise ObliviateError(f"class {c!r} is not an integer class index or a class name")
        if not 0 <= int(c) < bundle.num_classes:
            raise ObliviateError(
                f"class {c} is out of range: this model has classes 0..{bundle.num_classes - 1}"
            )
        out.append(int(c))
    return out
