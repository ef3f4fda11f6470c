"""The built-in executors, each a plugin module registered through our own entry points.

``serial`` runs in the driver's process (the default); ``local`` runs worker processes on this
machine; ``ray`` (extra ``vadbench[ray]``) runs Ray tasks on a local or remote cluster. The
contract they implement is `vadbench.api.executor.Executor`.
"""
