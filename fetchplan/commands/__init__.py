"""Sub-command orchestrators: each wires collaborators together and owns its output."""
