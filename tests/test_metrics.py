"""The node's Prometheus metrics (secnode/runtime/metrics.py) and what is built on them: the
Grafana dashboard and the alert rules under deploy/ must only use metrics a real node exposes.

promtool is not available here, so the rules are checked by parsing the YAML and matching every
metric name in every expression against a live 4-validator network's /metrics (slow test)."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from ledger.genesis import load_genesis
from ledger.keys import PrivateKey
from ledger.transactions import Transfer, sign_transaction
from secnode.runtime.metrics import Metrics
from tests.e2e_cluster import ROOT, Cluster

DASHBOARD = ROOT / "deploy" / "grafana" / "sec-dashboard.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
ALERT_NAMES = {"SecNoNewBlock", "SecValidatorMissingFromCertificates", "SecViewChangesRising"}
ALERT_NAMES |= {"SecPeerBanned"}

METRIC_NAME = re.compile(r"\b((?:sec|process|python)_[a-z0-9_]+)\b")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


class FixedSource:
    """A MetricsSource with set values."""

    def __init__(self) -> None:
        self.signed = {"aa" * 20: 7, "bb" * 20: 0}
        self.traffic = {"node1": (1000, 2000)}
        self.bans = 2

    def validator_last_signed(self) -> Mapping[str, int]:
        return self.signed

    def peer_traffic(self) -> Mapping[str, tuple[int, int]]:
        return self.traffic

    def peer_bans(self) -> int:
        return self.bans


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a strictly parsed exposition: (name, sorted labels) -> value."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_source_values_are_read_on_every_scrape() -> None:
    metrics, source = Metrics(), FixedSource()
    metrics.attach(source)
    first = samples_of(metrics.render())
    assert first[("sec_validator_last_signed_height", (("validator", "aa" * 20),))] == 7
    assert first[("sec_validator_last_signed_height", (("validator", "bb" * 20),))] == 0
    assert first[("sec_peer_received_bytes_total", (("peer", "node1"),))] == 1000
    assert first[("sec_peer_sent_bytes_total", (("peer", "node1"),))] == 2000
    assert first[("sec_peer_bans_total", ())] == 2
    source.signed = {"aa" * 20: 9}
    source.bans = 3
    second = samples_of(metrics.render())
    assert second[("sec_validator_last_signed_height", (("validator", "aa" * 20),))] == 9
    assert ("sec_validator_last_signed_height", (("validator", "bb" * 20),)) not in second
    assert second[("sec_peer_bans_total", ())] == 3


def test_round_rejections_and_trust_epochs_are_observed() -> None:
    metrics = Metrics()
    metrics.observe_marks([("pre_prepare", 4, 10.0), ("prepared", 4, 10.5)])
    metrics.observe_marks([("decided", 4, 11.0), ("delivered", 4, 11.25)])
    metrics.observe_marks([("decided", 5, 1.0), ("delivered", 5, 2.0)])  # no pre-prepare: no round
    metrics.record_rejected("nonce_too_low", "rpc")
    metrics.record_rejected("nonce_too_low", "rpc")
    metrics.record_rejected("malformed", "gossip")
    metrics.observe_trust_epoch(0.8)
    samples = samples_of(metrics.render())
    assert samples[("sec_consensus_round_seconds_count", ())] == 1
    assert samples[("sec_consensus_round_seconds_sum", ())] == 1.25
    rejected = "sec_rejected_transactions_total"
    assert samples[(rejected, (("reason", "nonce_too_low"), ("source", "rpc")))] == 2
    assert samples[(rejected, (("reason", "malformed"), ("source", "gossip")))] == 1
    assert samples[("sec_trust_epoch_seconds_count", ())] == 1
    assert samples[("sec_trust_epoch_seconds_bucket", (("le", "1.0"),))] == 1
    assert samples[("sec_trust_epoch_seconds_bucket", (("le", "0.5"),))] == 0


def test_names_follow_prometheus_conventions() -> None:
    """Counters end in _total, durations are _seconds, sizes _bytes; no _created series."""
    metrics = Metrics()
    metrics.attach(FixedSource())
    metrics.record_rpc("sec_status", "ok")
    metrics.observe_rpc_duration("sec_status", 0.001)
    metrics.record_rejected("duplicate", "rpc")
    for family in text_string_to_metric_families(metrics.render()):
        if not family.name.startswith("sec_"):
            continue
        names = {sample.name for sample in family.samples}
        if family.type == "counter":
            assert names == {family.name + "_total"}, family.name
        if family.type == "histogram":
            assert family.name.endswith("_seconds"), family.name
        assert not any(name.endswith("_created") for name in names), names
        assert "latency_ms" not in family.name and "_milliseconds" not in family.name


# --- dashboard and alert rules ------------------------------------------------------------------


def dashboard_expressions() -> list[str]:
    document = json.loads(DASHBOARD.read_text())
    assert document["uid"] and document["title"]
    expressions = []
    for panel in document["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["targets"], f"panel {panel['title']!r} shows nothing"
        expressions += [target["expr"] for target in panel["targets"]]
    return expressions


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    rules: list[dict[str, Any]] = [rule for group in document["groups"] for rule in group["rules"]]
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule
    return rules


def referenced_metrics(expressions: list[str]) -> set[str]:
    """Metric names in PromQL expressions (label values in quotes are left out)."""
    names = set()
    for expression in expressions:
        unquoted = re.sub(r'"[^"]*"', '""', expression)
        names |= set(METRIC_NAME.findall(unquoted))
    return names


def test_dashboard_and_rules_parse_and_cover_the_cases() -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} == ALERT_NAMES
    by_name = {rule["alert"]: rule for rule in rules}
    assert "[30s]" in by_name["SecNoNewBlock"]["expr"]
    assert (
        "sec_validator_last_signed_height" in by_name["SecValidatorMissingFromCertificates"]["expr"]
    )
    assert "sec_peer_bans_total" in by_name["SecPeerBanned"]["expr"]
    shown = referenced_metrics(dashboard_expressions())
    for needed in (
        "sec_blocks_committed_total",  # height rate
        "sec_view_changes_total",
        "sec_commit_latency_seconds_bucket",  # finality
        "sec_mempool_transactions",
        "sec_peers",
        "sec_rpc_requests_total",  # RPC errors
        "sec_validator_last_signed_height",  # per-validator certificate presence
    ):
        assert needed in shown, needed


def test_a_misspelt_metric_is_caught() -> None:
    """The name check itself can fail: a typo in an expression is not in a node's output."""
    exposed = {"sec_height"}
    assert referenced_metrics(["changes(sec_heigth[30s]) == 0"]) - exposed == {"sec_heigth"}
    assert referenced_metrics(['rate(x{method="sec_status"}[1m])']) == set()


def exposed_names(text: str) -> set[str]:
    """Sample names and family names (a histogram's `_bucket` etc. and the family itself)."""
    names = set()
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        names |= {sample.name for sample in family.samples}
    return names


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # local test node
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text: str = response.read().decode()
    return text


@pytest.mark.slow
def test_a_real_network_exposes_every_metric_the_dashboard_and_rules_use(tmp_path: Path) -> None:
    with Cluster.create(tmp_path / "net") as cluster:
        # node0 logs JSON with p2p raised to warning; the others keep the defaults (text, info).
        cluster.nodes[0].start_options = ("--log-format", "json", "--log-level", "p2p=warning")
        cluster.start()
        cluster.wait_ready()
        check_network(cluster)


def check_network(cluster: Cluster) -> None:
    first = cluster.nodes[0]
    genesis = load_genesis(first.home / "genesis.json")
    stranger = PrivateKey.generate()  # no account: the mempool refuses it as unknown_account
    tx = sign_transaction(
        stranger,
        genesis.chain_id,
        0,
        Transfer(bytes(20), 1),
        genesis_hash=genesis.document_hash(),
    )
    request = {"jsonrpc": "2.0", "id": 1, "method": "sec_sendTransaction"}
    request["params"] = {"tx": tx.encoded.hex()}
    refused = cluster.post(first, request)
    assert "error" in refused, refused
    cluster.wait_for_heights([0, 1, 2, 3], (cluster.heights([0])[0] or 0) + 3, timeout=30)

    # A node that caught up by checkpoint has delivered heights without a round of its own:
    # wait (bounded) until it has timed one, rather than read the first scrape.
    deadline = time.monotonic() + 30
    while True:
        text = fetch(first.rpc_url + "/metrics")
        rounds = samples_of(text).get(("sec_consensus_round_seconds_count", ()), 0)
        if rounds >= 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    exposed = exposed_names(text)
    missing = referenced_metrics(dashboard_expressions()) - exposed
    assert not missing, f"the dashboard uses metrics no node exposes: {sorted(missing)}"
    missing = referenced_metrics([rule["expr"] for rule in alert_rules()]) - exposed
    assert not missing, f"the alert rules use metrics no node exposes: {sorted(missing)}"

    samples = samples_of(text)
    signed = {
        dict(labels)["validator"]: value
        for (name, labels), value in samples.items()
        if name == "sec_validator_last_signed_height"
    }
    assert len(signed) == 4 and max(signed.values()) >= 1, signed
    received = [v for (n, _), v in samples.items() if n == "sec_peer_received_bytes_total"]
    sent = [v for (n, _), v in samples.items() if n == "sec_peer_sent_bytes_total"]
    assert len(received) == len(sent) == 3 and min(received) > 0 and min(sent) > 0
    reason = (("reason", "unknown_account"), ("source", "rpc"))
    assert samples[("sec_rejected_transactions_total", reason)] == 1
    assert samples[("sec_consensus_round_seconds_count", ())] >= 1
    assert samples[("process_resident_memory_bytes", ())] > 0

    check_json_log(first.log_path, first.name)
    text_lines = cluster.nodes[1].log_path.read_text()
    assert "p2p connected to" in text_lines  # p2p info lines exist where p2p is not raised
    assert f"[{cluster.nodes[1].name} h=" in text_lines  # human lines carry the node context


def check_json_log(path: Path, name: str) -> None:
    """Every line is one JSON object; every line logged inside the node carries its name, id,
    height and view; p2p lines below warning were not written (p2p=warning)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert lines, "the node logged nothing"
    entries = [json.loads(line) for line in lines]
    assert all({"time", "level", "component", "logger", "message"} <= set(e) for e in entries)
    inside = [e for e in entries if "node" in e]
    assert any("serving" in e["message"] for e in inside), entries[:5]
    for entry in inside:
        assert entry["node"] == name and entry["node_id"].startswith("sec1"), entry
        assert isinstance(entry["height"], int) and isinstance(entry["view"], int), entry
    quiet = [e for e in entries if e["component"] == "p2p" and e["level"] in {"debug", "info"}]
    assert not quiet, quiet[:3]
