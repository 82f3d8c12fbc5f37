"""`sec genesis new` from the validators' public keys (`--validators-file`, `--validator`): the
operators keep their node keys; the genesis, the peer lists and the homes come from what
`sec keys export-public` printed on each machine. Real key files, through the CLI in-process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.genesis import load_genesis
from ledger.keys import address_of, format_address
from secnode.keyfile import read_key_file
from secnode.runtime.config import load_config
from tests.clikit import run_cli_main

NAMES = ("alice", "bob", "carol", "dave")
HOSTS = "10.0.0.1,10.0.0.2,10.0.0.3:27000,10.0.0.4"


def make_key(capsys: pytest.CaptureFixture[str], path: Path) -> dict[str, str]:
    """`sec keys new --plain` at `path`, then its `sec keys export-public --json` object."""
    status, _, err = run_cli_main(capsys, "keys", "new", "--plain", "--out", str(path))
    assert status == 0, err
    status, out, err = run_cli_main(capsys, "keys", "export-public", str(path), "--json")
    assert status == 0, err
    exported: dict[str, str] = json.loads(out)
    return exported


@pytest.fixture
def machines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Path]:
    """One key per operator, each in its own "machine" directory: name -> key path."""
    keys = {}
    for name in NAMES:
        path = tmp_path / "machines" / name / "node.key"
        run_cli_main(capsys, "keys", "new", "--plain", "--out", str(path))
        keys[name] = path
    capsys.readouterr()
    return keys


def export_lines(capsys: pytest.CaptureFixture[str], machines: dict[str, Path]) -> str:
    """What the operators send: one `sec keys export-public` line each, concatenated."""
    lines = []
    for path in machines.values():
        status, out, err = run_cli_main(capsys, "keys", "export-public", str(path))
        assert status == 0, err
        lines.append(out)
    return "".join(lines)


@pytest.fixture
def keys_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], machines: dict[str, Path]
) -> Path:
    """The assembler's keys.json: the four operators' export lines."""
    path = tmp_path / "keys.json"
    path.write_text(export_lines(capsys, machines))
    return path


def test_genesis_from_exported_lines_names_the_operators_keys_and_peers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], machines: dict[str, Path], keys_file: Path
) -> None:
    out = tmp_path / "net"

    status, stdout, err = run_cli_main(
        capsys,
        "genesis", "new", "--validators-file", str(keys_file), "--out", str(out),
        "--hosts", HOSTS, "--json",
    )  # fmt: skip

    assert status == 0, err
    genesis = load_genesis(out / "genesis.json")
    public_keys = {name: read_key_file(path).public_key.hex() for name, path in machines.items()}
    assert [(v.name, v.public_key) for v in genesis.validators] == list(public_keys.items())
    assert [node["name"] for node in json.loads(stdout)["nodes"]] == list(NAMES)
    hosts = dict(
        zip(
            NAMES,
            ["10.0.0.1:26600", "10.0.0.2:26600", "10.0.0.3:27000", "10.0.0.4:26600"],
            strict=True,
        )
    )
    for name in NAMES:
        home = out / name
        assert not (home / "node.key").exists()  # the operator's own key goes there
        assert (home / "genesis.json").read_bytes() == (out / "genesis.json").read_bytes()
        config = load_config(home)
        assert config.name == name
        assert config.p2p.listen == f"0.0.0.0:{hosts[name].rpartition(':')[2]}"
        assert {(p.name, p.public_key, p.address) for p in config.p2p.peers} == {
            (other, public_keys[other], hosts[other]) for other in NAMES if other != name
        }
    # no private key of a validator was made here: only the genesis accounts' keys
    written = {p.name for p in out.rglob("*.key")}
    assert written == {p.name for p in (out / "accounts").iterdir()}


def test_array_file_and_repeated_validator_options_make_the_same_validators(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], machines: dict[str, Path]
) -> None:
    exported = [json.loads(line) for line in export_lines(capsys, machines).splitlines()]
    array_file = tmp_path / "keys.json"
    array_file.write_text(json.dumps(exported[:2], indent=2))
    options = [f"--validator={e['name']}={e['public_key']}" for e in exported[2:]]

    status, _, err = run_cli_main(
        capsys, "genesis", "new", "--validators-file", str(array_file), *options,
        "--out", str(tmp_path / "net"),
    )  # fmt: skip

    assert status == 0, err
    validators = load_genesis(tmp_path / "net" / "genesis.json").validators
    assert [(v.name, v.public_key) for v in validators] == [
        (e["name"], e["public_key"]) for e in exported
    ]


def test_export_public_json_entries_with_their_address_are_accepted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = [make_key(capsys, tmp_path / name / "node.key") for name in ("ann", "ben")]
    assert all("address" in entry for entry in entries)
    entries = [{**entry, "name": name} for entry, name in zip(entries, ("ann", "ben"), strict=True)]
    keys_file = tmp_path / "keys.json"
    keys_file.write_text("\n".join(json.dumps(entry) for entry in entries) + "\n")

    status, _, err = run_cli_main(
        capsys, "genesis", "new", "--validators-file", str(keys_file), "--out", str(tmp_path / "n")
    )

    assert status == 0, err
    assert [v.name for v in load_genesis(tmp_path / "n" / "genesis.json").validators] == [
        "ann",
        "ben",
    ]


def test_an_operator_key_put_in_its_home_is_the_genesis_validator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], machines: dict[str, Path], keys_file: Path
) -> None:
    out = tmp_path / "net"
    run_cli_main(capsys, "genesis", "new", "--validators-file", str(keys_file), "--out", str(out))
    home = out / "carol"
    machines["carol"].rename(home / "node.key")  # as `mv` keeps its mode 0600

    key = read_key_file(home / load_config(home).key_file)

    validators = load_genesis(home / "genesis.json").validator_set()
    assert validators.index_of(address_of(key.public_key)) is not None


def test_the_dev_flow_is_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_cli_main(capsys, "genesis", "new", "--dev", "--out", str(tmp_path / "d"))

    assert status == 0, err
    genesis = load_genesis(tmp_path / "d" / "genesis.json")
    assert [v.name for v in genesis.validators] == ["node0", "node1", "node2", "node3"]
    assert all((tmp_path / "d" / f"node{i}" / "node.key").exists() for i in range(4))


KEY = "ab" * 32
OTHER = "cd" * 32


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "no validators"),
        ("[]", "the array lists no validators"),
        ('{"name": "a", "public_key": "' + KEY + '"', "line 1: not JSON"),
        ('["a"]', "entry 1: expected"),
        ('{"name": "Alice", "public_key": "' + KEY + '"}', "name 'Alice' is not a validator name"),
        ('{"name": "accounts", "public_key": "' + KEY + '"}', "name 'accounts' is reserved"),
        ('{"name": "a", "public_key": "' + KEY.upper() + '"}', "not 64 lowercase hex digits"),
        ('{"name": "a", "public_key": "' + KEY[:-2] + '"}', "not 64 lowercase hex digits"),
        ('{"name": "a", "public_key": "' + KEY + '", "role": "x"}', "unknown field(s) 'role'"),
        (
            '{"name": "a", "public_key": "' + KEY + '", "address": "sec1qqqq"}',
            "address 'sec1qqqq' of 'a' is not its public key's address",
        ),
        (
            '{"name": "a", "public_key": "'
            + KEY
            + '"}\n{"name": "a", "public_key": "'
            + OTHER
            + '"}',
            "validator name 'a' appears twice",
        ),
        (
            '{"name": "a", "public_key": "'
            + KEY
            + '"}\n\n{"name": "b", "public_key": "'
            + KEY
            + '"}',
            "validators 'a' and 'b' have the same public key",
        ),
    ],
)
def test_invalid_key_list_is_named_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(content)
    out = tmp_path / "net"

    status, _, err = run_cli_main(
        capsys, "genesis", "new", "--validators-file", str(keys_file), "--out", str(out)
    )

    assert status != 0
    assert str(keys_file) in err or "key list" in err
    assert message in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--validator", "a" + KEY], "is not NAME=HEX"),
        (["--validator", f"a={KEY}", "--dev"], "--dev with a validator key list"),
        (["--validator", f"a={KEY}", "--validators", "4"], "--validators 4, yet 1 validator keys"),
        (["--validator", f"a={KEY}", "--hosts", "h1,h2"], "--hosts lists 2 hosts for 1"),
        (["--validators-file", "missing.json"], "cannot read validators file missing.json"),
    ],
)
def test_invalid_validator_options_are_named_and_write_nothing(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    arguments: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)

    status, _, err = run_cli_main(capsys, "genesis", "new", *arguments, "--out", "net")

    assert status != 0
    assert message in err, err
    assert not (tmp_path / "net").exists()


def test_invalid_address_check_uses_the_real_address_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The address a genuine `export-public --json` prints passes; one of another key fails."""
    first = make_key(capsys, tmp_path / "one.key")
    second = make_key(capsys, tmp_path / "two.key")
    assert first["address"] == format_address(address_of(bytes.fromhex(first["public_key"])))
    swapped = {"name": "one", "public_key": first["public_key"], "address": second["address"]}
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(swapped))

    status, _, err = run_cli_main(
        capsys, "genesis", "new", "--validators-file", str(keys_file), "--out", str(tmp_path / "n")
    )

    assert status != 0
    assert "the entry was altered" in err
    assert not (tmp_path / "n").exists()
