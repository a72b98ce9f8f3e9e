"""finer-forgetting.md's full reproduction (obliviate.experiments.finer_full; --help)."""

from obliviate.experiments.engine import main
from obliviate.experiments.finer_full import PAGE

if __name__ == "__main__":
    main(PAGE)
