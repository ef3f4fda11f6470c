"""The plugins, loaded only by the commands that need them.

Plugin modules import torch, which the report commands (`leaderboard`, `grid --table-only`, `plot`) must run
without; so the commands that train, list or check data load the plugins when they start, and the report commands
only when a stored result of an older version has to be upgraded.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from vadbench.api.errors import UsageError
from vadbench.api.types import RunResult

if TYPE_CHECKING:
    from vadbench.plugins.manager import Plugins


def plugins_with_warnings() -> Plugins:
    """The loaded plugins (importing them imports torch), with a warning line per plugin that failed to load."""
    try:
        from vadbench.plugins.manager import get_plugins
    except ImportError as error:
        raise UsageError(f"this command loads the plugins, which need torch ({error}); `vadbench leaderboard`, "
                         "`vadbench grid --table-only` and `vadbench plot` do not") from None

    plugins = get_plugins()
    for problem in plugins.errors:
        print(f"vadbench: warning: {problem}", file=sys.stderr)
    return plugins


def upgrade_with_plugins() -> Callable[[RunResult], RunResult]:
    """`vadbench.report.store.upgrade_stored`, loading the plugins at its first call: only results stored by
    an older version need them (a store written by this version is read without any plugin)."""
    loaded = functools.cache(plugins_with_warnings)

    def upgrade(result: RunResult) -> RunResult:
        from vadbench.report.store import upgrade_stored

        return upgrade_stored(loaded(), result)

    return upgrade
