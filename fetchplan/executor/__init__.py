"""The executor: runs a plan. It must never import ``fetchplan.planner``."""
