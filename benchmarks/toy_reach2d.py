"""Learning checks on ``toy/reach2d`` (minutes per run): the ``toy_reach2d`` study of ``benchmarks/variants.py``.

python benchmarks/toy_reach2d.py run warmup500_r128 --seed 0
python benchmarks/toy_reach2d.py report
"""

from __future__ import annotations

from variants import main

if __name__ == "__main__":
    main(study="toy_reach2d")
