"""Why each surviving mutant is left alive: a written reason per mutant, or a rule read off its
diff (the wording of an error message, the file an error names)."""

from __future__ import annotations

import re

#: Why each surviving mutant is left alive: equivalent, or what a test would have to pin.
#: Keyed by mutant name (valid for the source at the commit the page was made from).
_GPU = ("differs only on a GPU (it drops a device argument); on the CPU, where the tests run, "
        "it is equivalent")
_C, _S = "obliviate.calibration.x_", "obliviate.stats.xǁTrainingStatisticsǁ"
_K = "obliviate.checkpoint.x_"
_F = "obliviate.api.x_forget__mutmut_"
_D, _M = "obliviate.deep.", "obliviate.methods.mnemonic."
_S2, _ST = "obliviate.stats.xǁ", "obliviate.stats.x_"
EXPLANATIONS: dict[str, str] = {
    **{f"{_C}head_direction__mutmut_{i}": _GPU for i in (16, 18, 25, 27)},
    **{f"{_C}truncated_predictions__mutmut_{i}": _GPU for i in (3, 5)},
    **{f"{_C}statistics_strength__mutmut_{i}": _GPU for i in (8, 10)},
    **{f"{_C}head_direction__mutmut_{i}": "equivalent: torch.nan_to_num's default for NaN is 0.0"
       for i in (50, 53)},
    **{f"{_C}head_direction__mutmut_{i}": "equivalent: torch.nan_to_num's default for +inf is "
       "the dtype's largest finite value, and the Fishers are float32" for i in (51, 54)},
    **{f"{_C}head_direction__mutmut_{i}": "equivalent for any model: eta has one entry per "
       "penultimate feature, so it is never empty" for i in (60, 62)},
    f"{_C}required_strength__mutmut_1": "not equivalent, harmless for the registered models: "
    "for inputs with zero-width features (a model without a penultimate feature) it returns 0.0 "
    "where the original returns the largest gap over the drop (the drop is the bias's 1.0 per "
    "unit; a sample 3.0 nats above its kept class with margin 2.0 needs 5.0); with no input "
    "both return 0.0. It survives because no registered model has zero features, so no test "
    "can build such inputs through a model",
    f"{_C}required_strength__mutmut_23": "equivalent: a needed sample (gap > 0) whose drop is "
    "exactly 0 gives gap / 0 = inf, the same result as the early return",
    **{f"{_C}statistics_strength__mutmut_{i}": "equivalent: the feature minima are float32 "
       "(from_tensors and record_statistics make them so), as is the direction" for i in (9, 11)},
    f"{_S}from_tensors__mutmut_11": "equivalent: a margin is [C, C] (record_statistics and "
    "without make it so), so shape[1] == shape[0]; load, the one caller in the package, passes "
    "num_classes and checks the margin is [num_classes, num_classes]",
    **{f"{_S}without__mutmut_{i}": "equivalent: torch.tensor of Python ints is int64 already"
       for i in (4, 6)},
    **{f"{_S}without__mutmut_{i}": 'equivalent: float("-INF") is float("-inf")' for i in (11, 15)},
    **{f"{_K}read_safetensors__mutmut_{i}": "not on the path under test: load always passes "
       "map_location; read_safetensors' own default serves only recoverable.load_module (a LIRF "
       "deposit module), whose round trip tests/recoverable/test_lirf.py checks, outside the "
       "fast selection" for i in (1, 2)},
    f"{_K}load__mutmut_36": "equivalent while FORMAT_VERSION is 1: a file without a version "
    "is accepted as version 0 or 1 alike",
    **{f"{_K}load__mutmut_{i}": "equivalent: _check_metadata_types, just before, lets only an "
       "integer format_version through (a boolean is refused; absent, it is 0), so _int_or's "
       "default is never used" for i in (46, 49)},
    f"{_K}load__mutmut_50": "equivalent: a version that is not an integer maps to -2 instead of "
    "-1, and both are below 0",
    **{f"{_K}load__mutmut_{i}": "equivalent: the weights' names, shapes and dtypes were checked "
       "equal to the model's just before, so strict loading cannot fail here"
       for i in (126, 129, 131)},
    **{f"{_K}_checked_architecture__mutmut_{i}": "equivalent: a num_classes that is not an "
       "integer maps to +1 or -2 instead of -1, all below 2" for i in (23, 24)},
    f"{_K}_sane_setting__mutmut_25": "equivalent for JSON: json.loads makes only None, bool, "
    "int, float, str, list and dict, all handled above",
    f"{_K}_checked_history__mutmut_21": "equivalent: a class that is not an integer maps to -2 "
    "instead of -1, both out of range",
    **{f"{_F}{i}": _GPU for i in (44, 92)},
    **{f"{_F}{i}": "differs only on a GPU: torch.cuda.synchronize(None) waits for the current "
       "CUDA device, not the one given (the same unless device is cuda:N, N not current); on "
       "the CPU this line is not reached" for i in (113, 125)},
    **{f"{_F}{i}": "differs only on a GPU: the synchronize around unlearn() is skipped, so "
       "`seconds` could leave out GPU work still queued; on the CPU, where the tests run, the "
       "branch is skipped either way" for i in (111, 112, 123, 124)},
    f"{_F}105": "equivalent on the CPU: torch.manual_seed(seed) seeds the same CPU generator "
    "(and CUDA's, the milliseconds the branch saves), so the method draws the same numbers; "
    "on a GPU it would leave CUDA's generator unseeded, which the CPU tests cannot see",
    **{f"{_F}{i}": "equivalent in result: torch.manual_seed(seed) seeds the CPU generator as "
       "well as CUDA's; the branch only saves the milliseconds of seeding the others"
       for i in (106, 107)},
    f"{_F}109": "reached only on a GPU (on the CPU the line above seeds); the tests run on the CPU",
    **{f"{_F}{i}": "changes only the word after 'known:' in the error for a method without "
       "hyperparameters, and every registered method has some (the '(none)' is for a method "
       "registered by the user)" for i in (20, 21)},
    f"{_F}186": "equivalent: it copies a model the method made new as well; the copy is equal "
    "and shares nothing with the input, so only the time of a copy is lost",
    f"{_F}49": "equivalent: weights_sha256 reuses a remembered digest only when reuse is true, "
    "and None is false like False",
    **{f"{_K}load__mutmut_{i}": "equivalent: load builds the model just before, and "
       "weights_sha256 remembers digests per model object, so this new model has none to reuse: "
       "the digest is computed afresh either way" for i in (219, 221, 222)},
    **{f"{_K}load__mutmut_{i}": "changes only the words of the warning logged for stale "
       "statistics (the file named as None, or the format string); "
       "test_other_weights_written_into_the_file_are_found_on_load reads the reason in it, not "
       "the path" for i in (224, 229)},
    **{name: "killed by tests/test_class_names.py (the class names a model file and a forget "
       "record carry), which is outside the fast selection because its CLI tests take ~10 s "
       "each; checked by hand: each of these mutants fails it, the source passes it"
       for name in (f"{_K}load__mutmut_267", f"{_K}load__mutmut_281", f"{_F}217", f"{_F}219",
                    f"{_F}220")},
    f"{_C}data_check__mutmut_54": "equivalent: the kept-side check runs only with kept samples, "
    "so there are kept classes and retain is never empty there",
    **{f"{_S2}OutputSummaryǁ{f}__mutmut_{i}": f'equivalent: float("{s}") is float("{s.lower()}")'
       for f, i, s in (("__init__", 9, "-INF"), ("add", 11, "INF"))},
    f"{_ST}transport__mutmut_6": "unreachable: transport's one caller, the deep forget, runs "
    "only with layer statistics, so the None it starts from is always replaced",
    f"{_ST}transport__mutmut_10": "equivalent: the copy's margin_quantiles and confusion are "
    "replaced, not written in place, so the input's layer statistics stay as they were; the "
    "tensors both share are only read (api.forget's without() deep-copies before clearing)",
    # deep.py
    **{f"{_D}x_layer_inputs__mutmut_{i}": _GPU for i in (44, 48)},
    **{f"{_D}xǁ_Accumulatorǁadd__mutmut_{i}": _GPU for i in (9, 13, 18, 22, 26, 29)},
    **{f"{_D}x__inverse_times__mutmut_{i}": _GPU for i in (21, 24)},
    f"{_D}xǁFeatureLayerǁfeature_bound__mutmut_2": "equivalent: Tensor.to(None) returns the "
    "slopes unconverted, and they are already what the bound is: redirect computes the channel "
    "bound in float32 on the CPU, and every registered feature layer's slopes are float32 on "
    "the CPU (resnet18 moves them there)",
    f"{_D}xǁFeatureLayerǁfeature_bound__mutmut_8": "equivalent: the bound is [C, out], so "
    "dim=+1 is dim=-1",
    f"{_D}x_layer_inputs__mutmut_34": "unreachable: check_layer, which every caller runs first "
    "(record_layer_statistics, redirect), refuses any other module with its own message",
    **{f"{_D}x_layer_inputs__mutmut_{i}": "equivalent: the ones column is made float32 instead of "
       "the rows' dtype, torch.cat promotes it to the rows' dtype, and 1.0 is exact in every "
       "float dtype" for i in (43, 47)},
    f"{_D}xǁLayerStatisticsǁfrom_tensors__mutmut_11": "equivalent: class_mean is [C, d] (its "
    "shape is checked just below), so shape[+1] is shape[-1]",
    f"{_D}xǁLayerStatisticsǁfrom_tensors__mutmut_59": 'equivalent: float("-INF") is '
    'float("-inf")',
    **{f"{_D}xǁLayerStatisticsǁwithout__mutmut_{i}": "equivalent: torch.tensor of Python ints "
       "is int64 already" for i in (3, 5)},
    f"{_D}xǁLayerStatisticsǁwithout__mutmut_25": 'equivalent: float("INF") is float("inf")',
    **{f"{_D}xǁ_Accumulatorǁ__init____mutmut_{i}": "equivalent: add() sets moment and counts "
       "on its first call (it tests sums for None) and nothing reads them before"
       for i in (2, 3)},
    **{f"{_D}xǁ_Accumulatorǁadd__mutmut_{i}": "equivalent below 2^24 training inputs per class: "
       "the counts are kept in float32 instead of float64, and float32 holds every integer up "
       "to 16,777,216 exactly (the means divide float64 sums by them)" for i in (25, 28)},
    f"{_D}x__inverse_times__mutmut_7": "equivalent for any real training set: n is the number of "
    "layer inputs (samples times positions), so max(n, 1) and max(n, 2) differ only for a "
    "single training input",
    f"{_D}x__inverse_times__mutmut_9": "equivalent: the second moment is square",
    **{f"{_D}x__inverse_times__mutmut_{i}": "equivalent: the identity is made float32 instead of "
       "float64; its 0s and 1s are exact, and the sum with the float64 moment is float64"
       for i in (20, 23)},
    f"{_D}x_redirect__mutmut_49": "differs only for a kept class whose mixture weight is exactly "
    "0.01 (a float64 softmax value): the record then lists it or not; the edit is the same",
    f"{_D}x_retain_drop_bound__mutmut_19": "equivalent: at_risk is capped by min(1.0, at_risk) "
    "where it is used, so 1.0 and 2.0 give the same",
    f"{_D}x_retain_drop_bound__mutmut_48": "equivalent: at_risk is at most 1 (i/QUANTILES with "
    "i <= QUANTILES, or 1.0), so min(2.0, at_risk) is min(1.0, at_risk)",
    # mnemonic.py's verification path
    **{f"{_M}xǁ_GivenDataǁof__mutmut_{i}": _GPU for i in (6, 23)},
    **{f"{_M}xǁMnemonicForgettingǁ_head_step__mutmut_{i}": _GPU for i in (149, 151)},
    f"{_M}xǁMnemonicForgettingǁ_deep__mutmut_80": _GPU,
    f"{_M}xǁ_GivenDataǁof__mutmut_34": "equivalent in value: when the judge is the model, its "
    "features are computed again instead of reused (the same numbers, one more pass)",
    f"{_M}xǁMnemonicForgettingǁ_head_step__mutmut_57": "equivalent: bounds is read only under "
    "the training-statistics check, which exists only when stats is given, and then bounds "
    "is set to the per-class list first",
    f"{_M}xǁMnemonicForgettingǁ_head_step__mutmut_185": "differs only when the codes' largest "
    "margin after the step is exactly -margin + 1e-4 (the 1e-4 is already a tolerance for "
    "float32 rounding); no test can aim at that float",
    f"{_M}xǁMnemonicForgettingǁ_calibrated__mutmut_1": "equivalent: deep_note is read only as "
    "`deep_note or 'output only requested'`, and every path that has something to say sets "
    "it; '' and None are both falsy",
    f"{_M}xǁMnemonicForgettingǁ_deep__mutmut_129": "equivalent: _deep passes the edited copy "
    "as the model, so `model is original` is false with either original (the kept codes' "
    "check is skipped after a feature edit either way)",
    f"{_M}xǁMnemonicForgettingǁ_deep__mutmut_136": "unreachable in _deep: the carried "
    "statistics always exist there (the deep forget needs them), so the verdict has the "
    "training-statistics check or, when their bound is infinite and data are given, the data "
    "check; no_stats is used only when it has neither",
    **{f"{_M}xǁMnemonicForgettingǁ_{f}__mutmut_{i}": "changes only the wording of the audit "
       "record's scope (what the forget changed); the tests read its start and that the "
       "output-only scope says the features are unchanged, not every word"
       for f, i in (("calibrated", 108), ("deep", 161), ("deep", 162))},
}


_MESSAGE = re.compile(r'"XX.*XX"|"[^"a-z]*[A-Z][^"a-z]*"|ObliviateError\(None\)|'
                      r"'XX, XX'\.join|broken\[:4\]|wrong\[1\]|^\+\s*None$")
#: the line is (part of) an error message: a string of its own, or the raise itself
_IN_MESSAGE = re.compile(r'^\+\s*(f?"|raise |None,?$|None\)|\S*Error\()')
#: a string in a comparison, a key or an argument is not the wording of a message
_NOT_MESSAGE = re.compile(r'[=!]=\s*"|"\s+(not\s+)?in\s|\.get\(\s*"|^\+\s*"[^"]*":|\w=\s*"')
_PATH = re.compile(r"\((None|path), ")


def explain(name: str, diff: str, label: str, quick: dict | None) -> str:
    """Why ``name`` survives: a written reason, or one of a few rules read off its diff."""
    if name in EXPLANATIONS:
        return EXPLANATIONS[name]
    added = [line for line in diff.splitlines() if line.startswith("+")]
    if added and all(_MESSAGE.search(line) and _IN_MESSAGE.search(line)
                     and not _NOT_MESSAGE.search(line) for line in added):
        return ("changes only the wording of an error message (the error is still an "
                "ObliviateError); no test in the fast selection matches these words (each "
                "check's test matches the words that name what is wrong)")
    if (label == "checkpoint.py validation" and added
            and all("(None, " in line and _PATH.search(line) for line in added)):
        return ("changes only the file named in an error message (None instead of the path); "
                "no test in the fast selection checks the path in this message (the type check "
                "before _dict_or_empty leaves its own error unreachable)"
                if "_dict_or_empty(None" in diff else
                "changes only the file named in an error message (None instead of the path); "
                "no test in the fast selection checks the path in this message")
    return "**not explained yet**"
