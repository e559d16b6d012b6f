"""Developer and test tooling, outside the shipped wheel: the local cluster (`python -m devcluster`), spawners for the
real servers the CSMS needs, simulated stations. csms and cluster never import it (an import-linter contract)."""

from devcluster.postgres import PostgresNotFound, PostgresServer

__all__ = ["PostgresNotFound", "PostgresServer"]
