"""Methods with chosen hyperparameters on one model (obliviate.experiments.methods; --help)."""

from obliviate.experiments import methods
from obliviate.experiments.engine import command

if __name__ == "__main__":
    command(methods.__doc__, methods.SweepOptions, methods.sweep)
