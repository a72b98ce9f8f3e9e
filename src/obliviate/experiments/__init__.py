"""The experiments behind docs/results: one engine, one module per page.

:mod:`~obliviate.experiments.engine` keeps a page's rows in a JSONL file (resumed, merged from
parallel parts), runs the rows it lacks and writes the page. Each page module (``depth``,
``reliability``, ``retrofit``, ``finer_full``, ``finer_ours``, ``lirf``, ``speed``, ``scale``)
is a :class:`~.engine.Page`: its options, how to run its rows, and its table. The one-off runs a
page quotes (``*_probes``, ``methods``, ``ddp``) are an options class and a function.
``scripts/`` holds one thin entry point each; ``python -m obliviate.experiments NAME`` runs the
same commands.

Nothing else in the package imports this one: it sits on top of the library it measures.
"""
