"""JSON-RPC 2.0 over HTTP, plus /health and /metrics (see docs/rpc.md)."""
