"""The structure store: fetched structures as Parquet parts, a checkpoint and a consolidated,
de-duplicated table with a manifest (:mod:`miscreen.store.structures`)."""

from miscreen.store.structures import (
    DUPLICATE_OF,
    SourceQuery,
    StoreError,
    StructureStore,
    flag_cross_source_duplicates,
    read_store,
)

__all__ = [
    "DUPLICATE_OF",
    "SourceQuery",
    "StoreError",
    "StructureStore",
    "flag_cross_source_duplicates",
    "read_store",
]
