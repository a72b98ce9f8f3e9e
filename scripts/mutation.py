"""docs/results/mutation.md: mutation testing with mutmut (obliviate.experiments.mutation; --help)."""

from obliviate.experiments.mutation import main

if __name__ == "__main__":
    main()
