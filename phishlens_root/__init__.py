"""phishlens: serve LoRA phishing classifiers, explain them, and flag when they stop generalizing."""

__version__ = "0.1.0"
