"""Downstream transfer protocols (the paper's tables): scene classification, ADVANCE, DeepGlobe.

Torch-free modules: ``layouts``, ``deepglobe``, ``decode``, ``splits``, ``metrics``, ``results``,
``report``. The protocols themselves (``classify``, ``advance``, ``segment``) need torch.
"""
