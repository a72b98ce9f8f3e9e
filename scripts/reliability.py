"""docs/results/reliability.md (obliviate.experiments.reliability; --help)."""

from obliviate.experiments.engine import main
from obliviate.experiments.reliability import PAGE

if __name__ == "__main__":
    main(PAGE)
