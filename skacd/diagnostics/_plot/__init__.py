"""Displays for the diagnostics; matplotlib and umap are imported inside methods."""

from .deviation import DeviationViolinDisplay
from .embedding import EmbeddingDisplay
from .robustness import RobustnessCurveDisplay
from .score_scatter import ScoreScatterDisplay

__all__ = [
    "DeviationViolinDisplay",
    "EmbeddingDisplay",
    "RobustnessCurveDisplay",
    "ScoreScatterDisplay",
]
