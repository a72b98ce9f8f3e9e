"""docs/results/scale.md and scale-gpu.md (obliviate.experiments.scale; --help)."""

from obliviate.experiments.engine import main
from obliviate.experiments.scale import PAGE

if __name__ == "__main__":
    main(PAGE)
