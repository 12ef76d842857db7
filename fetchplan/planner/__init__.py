"""The planner: index clients, metadata, resolver provider and plan building."""
