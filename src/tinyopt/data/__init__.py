"""tinyopt.data: dataset loaders and feature blocks."""
