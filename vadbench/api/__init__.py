"""The contracts that plugins implement (Method, Dataset, Executor, the hooks) and the data they exchange."""
