"""SIMS Table 2: cross-modal StoryCloze (S, S->T, T->S, T, original text LM), Markdown and LaTeX.

Usage: python analysis/table2_cross_modal.py TABLE --out DIR [--style slides] [--published] [--compute COL]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("table2_cross_modal"))
