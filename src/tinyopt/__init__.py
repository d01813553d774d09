"""tinyopt: measure, compress, convert and deploy neural networks for microcontrollers."""

from tinyopt.errors import TinyoptError

__version__ = "0.1.0"
__all__ = ["TinyoptError", "__version__"]
