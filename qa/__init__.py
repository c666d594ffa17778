"""qa: extractive, cited question answering over cancer-immunotherapy literature."""

__version__ = "0.1.0"
