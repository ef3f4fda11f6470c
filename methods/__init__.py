"""Built-in method plugins, installed as ``vadbench.methods``: RTFM and Sultani et al.'s MIL ranking.

Each subpackage is an entry point of the ``vadbench`` distribution, loaded exactly like a
third-party plugin.
"""
