"""The data contract: canonical schemas, the reader, column mapping, validation and the simulator.

``load_dataset(data_dir, mapping=None)`` reads a data folder, converts it to the canonical tables
and checks it, raising one :class:`~retain.errors.DataError` that lists every problem found.
``read_tables`` is the same read in compact Arrow form (what the feature store builds from).

Modules, in the order a folder goes through them: :mod:`~retain.data.mapping` (how the files
differ from the contract), :mod:`~retain.data.files` (find and read the files as they are),
:mod:`~retain.data.validation` (parse and check, a chunk at a time),
:mod:`~retain.data.cleanup` (what is tidied up, with warnings),
:mod:`~retain.data.referrals` (who referred whom),
:mod:`~retain.data.dictionaries` (key codes and text dictionaries),
:mod:`~retain.data.reader` (the one reading path), :mod:`~retain.data.frames` (the same as
pandas), :mod:`~retain.data.fingerprints` (what names a folder's content),
:mod:`~retain.data.summary`; :mod:`~retain.data.schemas` describes the tables.
"""

from retain.data.fingerprints import FolderFingerprint, folder_fingerprint
from retain.data.frames import Dataset, load_dataset
from retain.data.mapping import Mapping, TableMapping, load_mapping
from retain.data.reader import SourceTables, read_tables
from retain.data.schemas import (
    CAMPAIGNS,
    COSTS,
    CUSTOMERS,
    INTERACTIONS,
    TABLES,
    TRANSACTIONS,
    canonical_schema,
)
from retain.data.summary import print_summary, summarize

__all__ = [
    "CAMPAIGNS",
    "COSTS",
    "CUSTOMERS",
    "INTERACTIONS",
    "TABLES",
    "TRANSACTIONS",
    "Dataset",
    "FolderFingerprint",
    "Mapping",
    "SourceTables",
    "TableMapping",
    "canonical_schema",
    "folder_fingerprint",
    "load_dataset",
    "load_mapping",
    "print_summary",
    "read_tables",
    "summarize",
]
