"""C99 library generator: static arena, own int8 kernels bit-exact with TFLM, Cortex-M4 build and run."""

from tinyopt.export.c.generate import Library, arduino_files, explain, generate_sources, write_library
from tinyopt.export.c.plan import ArenaPlanner, best_plan, build_plan

__all__ = ["ArenaPlanner", "Library", "arduino_files", "best_plan", "explain", "build_plan",
           "generate_sources", "write_library"]
