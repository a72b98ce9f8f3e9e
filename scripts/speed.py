"""docs/results/speed.md (obliviate.experiments.speed; --help)."""

from obliviate.experiments.engine import main
from obliviate.experiments.speed import PAGE

if __name__ == "__main__":
    main(PAGE)
