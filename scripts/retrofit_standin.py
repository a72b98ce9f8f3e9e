"""docs/results/retrofit.md (obliviate.experiments.retrofit; --help)."""

from obliviate.experiments.engine import main
from obliviate.experiments.retrofit import PAGE

if __name__ == "__main__":
    main(PAGE)
