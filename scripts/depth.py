"""docs/results/depth.md (obliviate.experiments.depth; --help)."""

# tests/unit/test_depth_page.py reads the page's verdict functions from this script
from obliviate.experiments.depth import PAGE, goals_failed, meets, summarise, verdict  # noqa: F401
from obliviate.experiments.engine import main

if __name__ == "__main__":
    main(PAGE)
