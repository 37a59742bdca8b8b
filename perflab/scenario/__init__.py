"""Scenario schema, loading with file:line errors, and expansion into cells."""

from perflab.scenario.loader import LoadedScenario, load_scenario
from perflab.scenario.plan import CellSpec, plan_cells
from perflab.scenario.schema import Delegate, Scenario, Variant

__all__ = ["CellSpec", "Delegate", "LoadedScenario", "Scenario", "Variant", "load_scenario", "plan_cells"]
