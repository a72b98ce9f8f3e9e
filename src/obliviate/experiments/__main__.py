"""``python -m obliviate.experiments NAME [ARGS]``: a results page's command line (``depth
table``, ...) or a one-off's (a probe, a shell script's table). ``NAME --help`` says more."""

from __future__ import annotations

import importlib
import sys

from obliviate.experiments.engine import command, main

#: name -> the module whose PAGE it runs
PAGES = {"depth": "depth", "finer-full": "finer_full", "finer-ours": "finer_ours", "lirf": "lirf",
         "reliability": "reliability", "retrofit": "retrofit", "scale": "scale",
         "speed": "speed"}  # fmt: skip
#: name -> (module, its options class, its function)
ONE_OFFS = {
    "ddp-check": ("ddp", "DdpOptions", "check"),
    "finer-diagnose": ("finer_probes", "DiagnoseOptions", "diagnose"),
    "finer-reports": ("finer_probes", "ReportsOptions", "backdoor_tables"),
    "pattern-a-grid": ("finer_probes", "GridOptions", "pattern_a_grid"),
    "lirf-ablation": ("lirf_probes", "AblationOptions", "ablation"),
    "lirf-diagnose": ("lirf_probes", "DiagnoseOptions", "diagnose"),
    "methods-table": ("methods", "ReportsOptions", "methods_table"),
    "core-table": ("methods", "ReportsOptions", "core_table"),
    "method-sweep": ("methods", "SweepOptions", "sweep"),
}
#: name -> the module whose own command line (``main(argv)``) it runs
OWN_COMMAND_LINE = {"mutation": "mutation"}


def run(name: str, argv: list[str]) -> None:
    """Run the command ``name`` with ``argv``."""
    if name in PAGES:
        main(importlib.import_module(f"obliviate.experiments.{PAGES[name]}").PAGE, argv)
    elif name in ONE_OFFS:
        module, options, action = ONE_OFFS[name]
        found = importlib.import_module(f"obliviate.experiments.{module}")
        command(found.__doc__, getattr(found, options), getattr(found, action), argv)
    elif name in OWN_COMMAND_LINE:
        importlib.import_module(f"obliviate.experiments.{OWN_COMMAND_LINE[name]}").main(argv)
    else:
        sys.exit(f"usage: python -m obliviate.experiments NAME [ARGS]; NAME is one of "
                 f"{', '.join([*PAGES, *ONE_OFFS, *OWN_COMMAND_LINE])}")  # fmt: skip


if __name__ == "__main__":
    run(sys.argv[1] if len(sys.argv) > 1 else "", sys.argv[2:])
