"""Why LIRF's recover net can lose the preserved classes (obliviate.experiments.lirf_probes)."""

from obliviate.experiments import lirf_probes
from obliviate.experiments.engine import command

if __name__ == "__main__":
    command(lirf_probes.__doc__, lirf_probes.DiagnoseOptions, lirf_probes.diagnose)
