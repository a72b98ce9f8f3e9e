"""Pattern A's RLD at several lr / lambda_KL (obliviate.experiments.finer_probes; --help)."""

from obliviate.experiments import finer_probes
from obliviate.experiments.engine import command

if __name__ == "__main__":
    command(finer_probes.__doc__, finer_probes.GridOptions, finer_probes.pattern_a_grid)
