"""``python -m obliviate`` and the ``obliviate`` script: the command line, also as
``torchrun -m obliviate train ...``.

This module imports nothing heavy, so that Ctrl-C is handled from the first moment: the handler
(:mod:`obliviate.interrupts`) is installed before typer, rich or torch are imported, and an
interrupt at any point, an import included, ends with the line ``interrupted`` and exit 130.
"""

from obliviate import interrupts


def main() -> None:
    """Run the command line (:func:`obliviate.cli.main`) with Ctrl-C handled at any moment."""
    interrupts.install()
    from obliviate.cli import main as run_command_line

    run_command_line()


if __name__ == "__main__":
    main()
