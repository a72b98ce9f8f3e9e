"""``python -m obliviate``: the command line, also as ``torchrun -m obliviate train ...``."""

from obliviate.cli import main

if __name__ == "__main__":
    main()
