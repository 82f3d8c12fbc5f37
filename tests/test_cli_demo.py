"""`sec demo` against a served development node: every step commits, and what it leaves on
chain is what the console shows (orders received, a refunded dispute with its -1 attestation,
a formed group). The wait for completions and the epoch runs in the multi-process console test
and by hand (`sec demo` on `sec testnet`); here `--no-wait` keeps it fast."""

from __future__ import annotations

import re

import pytest

from contracts.groups import get_group
from contracts.orders import get_order
from contracts.trust import get_counts
from secnode.network.devnet import dev_account_key
from tests.clikit import run_cli_main
from tests.rpc_node import ServedNode


def test_demo_plays_orders_a_dispute_and_a_group(
    served: ServedNode, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run_cli_main(capsys, "demo", "--no-wait", "--rpc", served.url)
    assert status == 0, err
    assert "PUBLIC" in err
    orders = re.findall(r"order ([0-9a-f]{64}) received", out)
    assert len(orders) == 3
    states = served.call(lambda: [get_order(served.node.state, bytes.fromhex(i)) for i in orders])
    assert [o.state if o else None for o in states] == ["RECEIVED"] * 3
    (disputed,) = re.findall(r"merchant2's order ([0-9a-f]{64})", out)
    order = served.call(lambda: get_order(served.node.state, bytes.fromhex(disputed)))
    assert order is not None and order.state == "RESOLVED"
    merchant2 = dev_account_key("merchant2").address
    assert served.call(lambda: get_counts(served.node.state, merchant2)) == (1, 0)  # (about, by)
    (group_id,) = re.findall(r"group offer ([0-9a-f]{64}) formed", out)
    group = served.call(lambda: get_group(served.node.state, bytes.fromhex(group_id)))
    assert group is not None and group.state == "FORMED" and group.members == 2


def test_demo_refuses_a_node_that_is_not_reachable(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_cli_main(capsys, "demo", "--no-wait", "--rpc", "http://127.0.0.1:9")
    assert status != 0
    assert "127.0.0.1:9" in err
