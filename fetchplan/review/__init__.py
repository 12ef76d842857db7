"""Reviewing plans before anything is fetched: audit reports, policies, diffs and graphs.

Submodules import nothing of the planner (the executor uses :mod:`.policy` air-gapped); this
package module imports none of them, so importing one stays cheap.
"""
