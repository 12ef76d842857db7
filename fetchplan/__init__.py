"""fetchplan: plan, fetch and install Python requirements as three inspectable steps."""

__version__ = "0.1.0"

__all__ = ["__version__"]
