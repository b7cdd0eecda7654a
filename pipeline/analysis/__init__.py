"""Analysis of a master: one cheap low-resolution decode, cached by content.

Every measurement that planning uses (motion, audio energy and shot changes
today) comes from the same pass, so a master is read for analysis once.
"""

from pipeline.analysis.cache import cache_dir
from pipeline.analysis.video import STEP_MS, Analysis, analyze_video

__all__ = ["STEP_MS", "Analysis", "analyze_video", "cache_dir"]
