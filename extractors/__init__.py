"""Built-in feature extractors, installed as ``vadbench.extractors``: the networks that turn videos into the
snippet features the dataset adapters read (RTFM's I3D-ResNet50, Wu et al.'s Inception I3D,
Sultani et al.'s C3D).

Each extractor subpackage is an entry point of the ``vadbench`` distribution, loaded exactly like a
third-party plugin; `vadbench.extract` (core) decodes, crops, batches and writes, and names no extractor.
"""
