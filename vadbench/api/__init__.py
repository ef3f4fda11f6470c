"""The contracts that plugins implement (Method, Dataset, Executor, the hooks) and the data they exchange.

The first layer: nothing here imports any other part of vadbench."""
