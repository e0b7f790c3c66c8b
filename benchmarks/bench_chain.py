"""The `chain` group of `gradcheck bench`, as a plain script.

    python benchmarks/bench_chain.py [--quick] [--json FILE]

Same code, sizes and table as `gradcheck bench --only chain` (see gradcheck/bench/).
"""

import sys

from gradcheck.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--only", "chain", *sys.argv[1:]]))
