"""fahflow: run alchemical nonequilibrium free-energy Tasks on Folding@home.

The package holds all logic; the Snakemake workflow at the repository root only calls its
``fahflow`` console script. See README.md for how the pieces fit.
"""

__version__ = "0.1.0"
