"""Theory without training: the AF catalog, mean-field signal propagation and empirical
propagation at initialization (actlab.theory.propagation)."""

from actlab.theory.catalog import af_properties, catalog, relative_cost
from actlab.theory.meanfield import (
    chi1,
    critical_sw,
    derivative,
    fixed_point,
    phase_diagram,
    variance_map,
)

__all__ = ["af_properties", "catalog", "chi1", "critical_sw", "derivative", "fixed_point",
           "phase_diagram", "relative_cost", "variance_map"]
