"""Where Pattern B/C's lost D_r accuracy goes (obliviate.experiments.finer_probes; --help)."""

from obliviate.experiments import finer_probes
from obliviate.experiments.engine import command

if __name__ == "__main__":
    command(finer_probes.__doc__, finer_probes.DiagnoseOptions, finer_probes.diagnose)
