"""Benchmarks behind `sec bench`: ledger (single process), p2p, cluster."""
