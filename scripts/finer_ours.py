"""finer-forgetting.md's ours beside the paper's (obliviate.experiments.finer_ours; --help)."""

from obliviate.experiments.engine import main
from obliviate.experiments.finer_ours import PAGE

if __name__ == "__main__":
    main(PAGE)
