"""SIMS Table 3: the largest run per variant beside published SLMs (--published), Markdown and LaTeX.

Usage: python analysis/table3_slm_comparison.py TABLE --out DIR [--style slides] [--published] [--compute COL]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("table3_slm_comparison"))
