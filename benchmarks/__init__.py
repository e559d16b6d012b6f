"""Station simulator and load benchmarks; run each `bench_*.py` as a script (see its docstring)."""
