"""The `models` group of `gradcheck bench`, as a plain script.

    python benchmarks/bench_models.py [--quick] [--json FILE]

Same code, sizes and table as `gradcheck bench --only models` (see gradcheck/bench/_models.py):
an MLP of 2,410 to 600,010 parameters and a custom_vjp attention, each right and wrong, checked
by gradcheck.check (reference=None) and by check_grads on 100 points each.
"""

import sys

from gradcheck.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--only", "models", *sys.argv[1:]]))
