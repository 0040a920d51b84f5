"""actlab: comparative studies of activation functions and weight initializers in CNNs."""

__version__ = "0.1.0"
