"""Analysis of result files: densities of states, rate distributions, relaxation curves."""
