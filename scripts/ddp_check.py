"""Issue 17's checks with numbers, quoted by the README (obliviate.experiments.ddp; --help)."""

from obliviate.experiments import ddp
from obliviate.experiments.engine import command

if __name__ == "__main__":
    command(ddp.__doc__, ddp.DdpOptions, ddp.check)
