"""Benchmark runner: grids of methods x seeds, results.jsonl, tables, plots, report."""

from obliviate.bench.config import PAPER_METHODS, BenchConfig, load_config
from obliviate.bench.results import ResultsFile
from obliviate.bench.runner import BenchRunner, run_bench

__all__ = ["PAPER_METHODS", "BenchConfig", "BenchRunner", "ResultsFile", "load_config", "run_bench"]
