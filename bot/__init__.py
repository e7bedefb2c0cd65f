"""qabot: answers questions about a body of knowledge by quoting the passages that answer them."""

__version__ = "0.1.0"
