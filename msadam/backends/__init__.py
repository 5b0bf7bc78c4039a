"""Built-in backends. Only the NumPy reference lives in the core; the others are plugins."""
