"""Analysis: params, MACs, FLOPs, memory (textbook and planned arena), flash, latency, energy, fit."""

from tinyopt.analysis.cost import CostTotals, LayerCost, layer_costs, totals
from tinyopt.analysis.fit import Analysis, analyze
from tinyopt.analysis.memory import ArenaPlan, GreedyPlanner, plan_arena, textbook_memory
from tinyopt.analysis.training import TrainingMemory, training_memory

__all__ = ["Analysis", "ArenaPlan", "CostTotals", "GreedyPlanner", "LayerCost", "TrainingMemory", "analyze",
           "layer_costs", "plan_arena", "textbook_memory", "totals", "training_memory"]
