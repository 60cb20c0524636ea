"""Diagnostics: how well do features or attributions separate the classes?

Measures (:func:`fisher_ratio`, :func:`separation_report`, ...) use numpy and
scikit-learn only. The ``*Display`` classes follow scikit-learn's plotting API
and need matplotlib (``pip install "skacd[plot]"``), imported only when a
display is built; :class:`EmbeddingDisplay` also uses umap-learn.
"""

from ._plot import (
    DeviationViolinDisplay,
    EmbeddingDisplay,
    RobustnessCurveDisplay,
    ScoreScatterDisplay,
)
from ._separation import (
    SeparationReport,
    fisher_ratio,
    inter_class_distance,
    intra_class_variance,
    separation_report,
)

__all__ = [
    "DeviationViolinDisplay",
    "EmbeddingDisplay",
    "RobustnessCurveDisplay",
    "ScoreScatterDisplay",
    "SeparationReport",
    "fisher_ratio",
    "inter_class_distance",
    "intra_class_variance",
    "separation_report",
]
