"""pytest-benchmark suites of vadbench (run explicitly: ``pytest benchmarks/``; ``tox`` and a bare
``pytest`` collect only tests/). Benchmarks report figures; they pass whatever the timings are."""

from __future__ import annotations

#: name -> median seconds per training step (or per batch), filled by the benchmarks of this session.
MEDIANS: dict[str, float] = {}
#: (ours, theirs, what): pairs whose ratio the summary prints.
PAIRS = (
    ("vadbench step", "reference step", "full training step"),
    ("vadbench batch", "reference batch", "batch preparation only"),
)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    """Print the speed-up of vadbench over the reference loop for every pair that ran."""
    pairs = [(ours, theirs, what) for ours, theirs, what in PAIRS if {ours, theirs} <= MEDIANS.keys()]
    if not pairs:
        return
    terminalreporter.write_sep("-", "vadbench against the reference loop (medians)")
    for ours, theirs, what in pairs:
        terminalreporter.write_line(
            f"{what}: vadbench {1000 * MEDIANS[ours]:.2f} ms, reference {1000 * MEDIANS[theirs]:.2f} ms "
            f"-> {MEDIANS[theirs] / MEDIANS[ours]:.1f}x"
        )
