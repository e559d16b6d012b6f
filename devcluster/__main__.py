"""`python -m devcluster`: the local cluster deploy/local/run.sh starts (dev only, not in the shipped wheel)."""

from devcluster.launcher import main_dev

main_dev()
