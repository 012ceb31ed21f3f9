"""Sub-commands of the ``maskbench`` CLI, one module per family (see :mod:`bench.cli`)."""
