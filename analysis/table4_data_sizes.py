"""SIMS Table 4: training data per corpus (tokens per modality; published hours with --published).

Usage: python analysis/table4_data_sizes.py TABLE --out DIR [--style slides] [--published] [--compute COL]
(the options of `scaling figures`; see `scaling figures --help`).
"""

import sys

from scaling.commands.figure_script import main

if __name__ == "__main__":
    sys.exit(main("table4_data_sizes"))
