"""Closed-form conv-net edits against retraining (obliviate.experiments.conv_edits; --help)."""

from obliviate.experiments import conv_edits
from obliviate.experiments.engine import command

if __name__ == "__main__":
    command(conv_edits.__doc__, conv_edits.ConvEditOptions, conv_edits.probe)
