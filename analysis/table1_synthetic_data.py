"""SIMS Table 1: metrics per training corpus (real vs synthetic vs both), Markdown and LaTeX.

Usage: python analysis/table1_synthetic_data.py TABLE --out DIR [--style slides] [--published] [--compute COL]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("table1_synthetic_data"))
