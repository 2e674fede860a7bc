"""gptlab: the helper library of the build-a-GPT-from-scratch course."""

from gptlab.notebook import budget, is_smoke, setup_notebook

__version__ = "0.1.0"
__all__ = ["budget", "is_smoke", "setup_notebook", "__version__"]
