"""Theory without training: mean-field signal propagation (and, to come, AF properties
and empirical propagation at initialization)."""

from actlab.theory.meanfield import (
    chi1,
    critical_sw,
    derivative,
    fixed_point,
    phase_diagram,
    variance_map,
)

__all__ = ["chi1", "critical_sw", "derivative", "fixed_point", "phase_diagram",
           "variance_map"]
