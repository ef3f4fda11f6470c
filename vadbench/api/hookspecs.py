"""The plugin contract: a few small hooks, each given a `register` callable (llm-style).

A plugin is any module exposed under the ``vadbench`` entry-point group that implements some of
these hooks with ``@vadbench.hookimpl``. Built-in methods and datasets use exactly this path.
"""

import pluggy

hookspec = pluggy.HookspecMarker("vadbench")


@hookspec
def vadbench_register_methods(register):
    """Register WSVAD methods.

    Call ``register(name, cls, description=None, /, **preset)`` once per method or preset, where ``cls``
    subclasses :class:`vadbench.api.method.Method`, ``name`` is kebab-case (``"rtfm"``), and ``preset``
    are option values of ``cls.Config`` that define a variant (``use_tsa=False``). The first three are
    positional-only, so no option name is reserved. ``cls.Config`` must have ``batch_size`` and ``steps``.
    """


@hookspec
def vadbench_register_datasets(register):
    """Register dataset adapters.

    Call ``register(name, cls, description=None, /, **preset)`` where ``cls`` subclasses
    :class:`vadbench.api.dataset.Dataset`; presets fix options (for example a benchmark-shaped synthetic set).
    """


@hookspec
def vadbench_register_executors(register):
    """Register executors: where the runs of ``vadbench run`` and ``vadbench grid`` execute.

    Call ``register(name, cls, description=None, /, **preset)`` where ``cls`` subclasses
    :class:`vadbench.api.executor.Executor`; ``--executor NAME`` selects one, and the flags
    ``--workers``, ``--address``, ``--gpus-per-run`` and ``--cpus-per-run`` set the ``Config``
    options of those names. Import heavy or optional engines inside the executor, not at
    registration, so that ``vadbench list`` works without them.
    """


@hookspec
def vadbench_register_extractors(register):
    """Register feature extractors (`vadbench extract --extractor NAME`).

    Call ``register(name, cls, description=None, /, **preset)`` where ``cls`` subclasses
    :class:`vadbench.api.extractor.Extractor`; presets fix options (for example a crop set).
    """
