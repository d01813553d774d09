"""Analysis: params, MACs, FLOPs, memory (textbook and planned arena), flash, latency, energy, fit."""

from tinyopt.analysis.cost import CostTotals, LayerCost, layer_costs, totals
from tinyopt.analysis.fit import Analysis, analyze
from tinyopt.analysis.latency import (
    battery_life_h,
    calibrate,
    calibrate_cycle_factor,
    calibrated_latency_s,
    energy_mj,
    rate_latency_s,
)
from tinyopt.analysis.memory import (
    ALIGNMENT,
    ArenaPlan,
    GreedyPlanner,
    plan_arena,
    tensor_lifetimes,
    textbook_memory,
)
from tinyopt.analysis.training import TrainingMemory, training_memory
from tinyopt.analysis.whatif import scale_filters

__all__ = ["ALIGNMENT", "Analysis", "ArenaPlan", "CostTotals", "GreedyPlanner", "LayerCost", "TrainingMemory",
           "analyze", "battery_life_h", "calibrate", "calibrate_cycle_factor", "calibrated_latency_s",
           "energy_mj", "layer_costs", "plan_arena", "rate_latency_s", "scale_filters", "tensor_lifetimes",
           "textbook_memory", "totals", "training_memory"]
