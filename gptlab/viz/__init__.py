"""Figures and diagrams the lessons show. One small module per kind of picture."""

from gptlab.viz.pipeline import STAGES, pipeline

__all__ = ["STAGES", "pipeline"]
