"""Refiners: improve a feasible warm-start mask (1-swap ``swap``, DSnoT ``dsnot``)."""
