"""The RPC schema, one for the node and its clients: parameter and result models of every
method (`models`, `trust`, `validators`), ledger objects as JSON (`objects`) and the field types
(`values`).

Invariant: this package imports nothing of the node runtime (no aiohttp, nothing from
`secnode.runtime`), so the CLI, the auditor and a web console can import it without the node.
"""
