"""Built-in method plugins, installed as ``vadbench.methods``: RTFM, Sultani et al.'s MIL ranking, MGFN,
UR-DMU, BN-WVAD and PEL4VAD.

Each method subpackage is an entry point of the ``vadbench`` distribution, loaded exactly like a
third-party plugin. What several of them compute alike lives in `vadbench.methods._shared`, the only
code a method package imports besides vadbench's own.
"""
