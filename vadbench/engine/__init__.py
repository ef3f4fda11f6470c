"""Training and evaluating runs: the one run path, the training loop, test scoring, model selection, the
GPU fast path and stacked seeds."""
