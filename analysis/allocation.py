"""Compute-optimal N*(C) and D*(C) from Approaches 2 and 3 with bootstrap bands, beside the allocations
of published laws (Chinchilla, Cuervo & Marxer, Muennighoff).

Usage: python analysis/allocation.py TABLE --out DIR [--loss COL] [--bootstrap K] [--style slides]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("allocation"))
