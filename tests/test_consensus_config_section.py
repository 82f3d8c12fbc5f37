"""`[consensus]` of config.toml refuses what the replica would refuse at start."""

from __future__ import annotations

import pytest

from secnode.runtime.config import ConfigError, parse_config


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"batch_wait_s": 0}, "consensus.batch_wait_s"),
        ({"empty_block_interval_s": 0}, "consensus.empty_block_interval_s"),
        ({"view_change_timeout_s": 0}, "consensus.view_change_timeout_s"),
    ],
)
def test_invalid_consensus_config(section: dict[str, float], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        parse_config({"name": "n", "consensus": section}, "config.toml")
