"""State sync: joining a long chain from peers' snapshots instead of replaying every block.

`shelf` takes snapshots in a running node and serves them, `protocol` is the p2p messages,
`fetch` fetches and verifies one from several peers, `join` runs it before a new node starts.
docs/operations.md "State sync"; the messages: docs/p2p.md "State sync requests".
"""
