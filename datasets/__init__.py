"""Built-in dataset adapters, installed as ``vadbench.datasets``; each registers through the plugin hook."""
