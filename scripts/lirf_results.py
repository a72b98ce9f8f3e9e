"""LIRF's multi-deposit experiment per seed (obliviate.experiments.lirf; --help)."""

from obliviate.experiments.engine import main
from obliviate.experiments.lirf import PAGE

if __name__ == "__main__":
    main(PAGE)
