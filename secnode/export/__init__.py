"""`sec export`: the chain as Parquet tables for analysts, added to incrementally.

`source` reads a stopped node's store into table columns (and recomputes every trust epoch's
scores, checked against the roots on chain), `schema` declares the tables, `writer` and
`manifest` keep the export directory valid and append-only, `progress` reports, and `run`
ties one export together. docs/operations.md "Exporting for analysts" documents the tables.
"""
