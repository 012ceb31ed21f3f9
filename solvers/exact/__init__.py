"""Exact solvers: provably optimal masks row by row.

``rows`` (normalised row QPs and their reduction) and ``row_pool`` (run a backend on every
row, judge, merge) are shared; ``formulations`` holds the integer-programming linearisations
and ``sdp_bound`` the SDP node bound; every other module is one backend.
"""
