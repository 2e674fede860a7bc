"""gptlab: the helper library of the build-a-GPT-from-scratch course."""

__version__ = "0.1.0"
__all__ = ["budget", "is_smoke", "setup_notebook", "__version__"]


def __getattr__(name: str):
    # Lazy, so `gptlab course check` and other commands that need no torch start fast.
    if name in ("budget", "is_smoke", "setup_notebook"):
        from gptlab import notebook

        return getattr(notebook, name)
    raise AttributeError(f"module 'gptlab' has no attribute {name!r}")
