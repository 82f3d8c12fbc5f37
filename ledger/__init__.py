"""The ledger core: encoding, keys, transactions, blocks, state, Merkle trees, storage, execution.

Nothing in this package does I/O except `ledger.store_leveldb` (behind the `Store` interface) and
the key-file helpers in `ledger.keys`; no asyncio, sockets, wall clock or global randomness.
"""
