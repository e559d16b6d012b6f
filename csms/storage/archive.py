"""Archive a partition to Parquet (pyarrow) before it is dropped: a local directory or an object-store URL
(anything ``pyarrow.fs.FileSystem.from_uri`` opens: file paths, s3://, gs://...).

Rows are read in key order in bounded chunks (never the whole partition in memory) and written to a temporary
name that is renamed only once complete, so a crash mid-archive leaves no file that looks finished and the
partition is not dropped.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

import trio

from csms.storage.database import Database

CHUNK_ROWS = 50_000


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date | str | int | float | bool) or value is None:
        return value
    return str(value)  # uuid, xid8 text, json...


async def archive_partition(db: Database, partition: str, key: str, destination: str) -> tuple[str, int]:
    """Write ``partition`` to ``<destination>/<partition>.parquet``; returns (path, rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow import fs

    filesystem, base = fs.FileSystem.from_uri(destination)
    final = f"{base.rstrip('/')}/{partition}.parquet"
    temporary = final + ".partial"
    await trio.to_thread.run_sync(partial(filesystem.create_dir, base.rstrip("/") or "/", recursive=True))
    writer: Any = None
    stream: Any = None
    rows = 0
    last: Any = None
    try:
        while True:
            if last is None:
                chunk = await db.fetch(f"SELECT * FROM {partition} ORDER BY {key} LIMIT {CHUNK_ROWS}")
            else:
                chunk = await db.fetch(
                    f"SELECT * FROM {partition} WHERE {key} > $1 ORDER BY {key} LIMIT {CHUNK_ROWS}", last
                )
            if not chunk:
                break
            columns = list(chunk[0].keys())
            table = pa.Table.from_pylist([{c: _plain(r[c]) for c in columns} for r in chunk])
            if writer is None:
                stream = await trio.to_thread.run_sync(filesystem.open_output_stream, temporary)
                writer = pq.ParquetWriter(stream, table.schema)
            await trio.to_thread.run_sync(writer.write_table, table.cast(writer.schema))
            rows += len(chunk)
            last = chunk[-1][key]
        if writer is None:  # an empty partition still gets its (empty) file: the archive says "nothing here"
            stream = await trio.to_thread.run_sync(filesystem.open_output_stream, temporary)
            writer = pq.ParquetWriter(stream, pa.schema([]))
        await trio.to_thread.run_sync(writer.close)
        writer = None
        await trio.to_thread.run_sync(stream.close)
        stream = None
        await trio.to_thread.run_sync(filesystem.move, temporary, final)
    finally:
        if writer is not None:
            await trio.to_thread.run_sync(writer.close)
        if stream is not None:
            await trio.to_thread.run_sync(stream.close)
    return final, rows
