"""deploy/besu/make_network.py: the generated QBFT network agrees with its own keys, Besu's formats and compose."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import tomllib
from pathlib import Path, PurePosixPath
from types import ModuleType

import pytest
import rlp
from eth_keys import keys

BESU_DIR = Path(__file__).resolve().parents[2] / "deploy" / "besu"
NAMES = ("operator", "regulator", "provider1", "provider2")
ACCOUNTS = ("operator", "regulator")
PATH_OPTIONS = ("genesis-file", "node-private-key-file", "permissions-nodes-config-file",
                "permissions-accounts-config-file")

# Besu's documented QBFT genesis (besu-docs, private-networks/how-to/configure/consensus/qbft.md): four validators,
# and the contract-validator variant with none. Our encoder must reproduce both byte for byte.
DOC_VALIDATORS = ("0x64a702e6263b7297a96638cac6ae65e6541f4169", "0x3923390ad55e90c237593b3b0e401f3b08a03185",
                  "0xaefdb9a738c9f433e5b6b212a6d62f6370c2f692", "0xc7eeb9a4e00ce683cf93039b212648e01c6c6b78")
DOC_EXTRA_DATA = ("0xf87aa00000000000000000000000000000000000000000000000000000000000000000f8549464a702e6263b7297a9"
                  "6638cac6ae65e6541f4169943923390ad55e90c237593b3b0e401f3b08a0318594aefdb9a738c9f433e5b6b212a6d6"
                  "2f6370c2f69294c7eeb9a4e00ce683cf93039b212648e01c6c6b78c080c0")
DOC_EMPTY_EXTRA_DATA = "0xe5a00000000000000000000000000000000000000000000000000000000000000000c0c080c0"


@pytest.fixture(scope="module")
def make_network() -> ModuleType:
    """The script, imported from its path (deploy/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_network", BESU_DIR / "make_network.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def network(make_network, tmp_path_factory) -> Path:
    """A network generated with the default options, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("besu") / "network"
    assert make_network.main(["--out", str(out)]) == 0
    return out


def node_key(path: Path) -> keys.PrivateKey:
    """Load a key file as Besu or eth_account would (hex, with or without 0x)."""
    return keys.PrivateKey(bytes.fromhex(path.read_text(encoding="ascii").strip().removeprefix("0x")))


def enode_of(network: Path, name: str, host: str | None = None) -> str:
    """Derive a validator's enode URL from its key file, independently of the script."""
    public = node_key(network / name / "key").public_key.to_bytes().hex()
    return f"enode://{public}@{host or name}:30303"


def genesis_of(network: Path) -> dict:
    """Read genesis.json."""
    return json.loads((network / "genesis.json").read_text(encoding="utf-8"))


def toml_of(path: Path) -> dict:
    """Parse a TOML file with the standard library."""
    return tomllib.loads(path.read_text(encoding="utf-8"))


def on_host(network: Path, container_path: str, root: PurePosixPath) -> Path:
    """Map a path inside the container (under the compose mount point) to the generated folder."""
    return network / PurePosixPath(container_path).relative_to(root)


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Return every file's bytes and mode, to detect any change."""
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


# --- genesis ------------------------------------------------------------------------------------------------------


def test_extra_data_decodes_to_vanity_then_the_validators_derived_from_their_node_keys(network):
    extra = bytes.fromhex(genesis_of(network)["extraData"].removeprefix("0x"))
    vanity, validators, vote, round_, seals = rlp.decode(extra)
    assert vanity == bytes(32)
    assert validators == [node_key(network / name / "key").public_key.to_canonical_address() for name in NAMES]
    assert (vote, round_, seals) == ([], b"", [])


@pytest.mark.parametrize(("addresses", "published"), [(DOC_VALIDATORS, DOC_EXTRA_DATA), ((), DOC_EMPTY_EXTRA_DATA)])
def test_extra_data_encoding_reproduces_besus_documented_genesis(make_network, addresses, published):
    assert make_network.qbft_extra_data(addresses) == published


def test_address_files_name_the_validator_of_each_node_key(network):
    for name in NAMES:
        derived = node_key(network / name / "key").public_key
        assert (network / name / "address").read_text().strip() == derived.to_address()
        assert (network / name / "key.pub").read_text().strip() == derived.to_hex()


def test_genesis_is_a_free_gas_london_qbft_chain(network):
    genesis = genesis_of(network)
    config = genesis["config"]
    assert config["qbft"] == {"blockperiodseconds": 2, "epochlength": 30000, "requesttimeoutseconds": 4}
    assert (config["berlinBlock"], config["londonBlock"], config["zeroBaseFee"]) == (0, 0, True)
    assert "shanghaiTime" not in config and "cancunTime" not in config
    assert genesis["difficulty"] == "0x1"
    assert all(toml_of(network / name / "config.toml")["min-gas-price"] == 0 for name in NAMES)


def test_genesis_funds_exactly_the_operator_and_regulator_accounts(network):
    funded = {"0x" + address for address in genesis_of(network)["alloc"]}
    assert funded == {node_key(network / "accounts" / f"{name}.key").public_key.to_address() for name in ACCOUNTS}
    assert all(int(entry["balance"], 16) > 0 for entry in genesis_of(network)["alloc"].values())


def test_chain_id_option_is_written_to_genesis(make_network, tmp_path):
    assert make_network.main(["--out", str(tmp_path / "net"), "--chain-id", "4242"]) == 0
    assert genesis_of(tmp_path / "net")["config"]["chainId"] == 4242


def test_default_chain_id_is_the_documented_one(network):
    assert genesis_of(network)["config"]["chainId"] == 20261128


# --- permissioning ------------------------------------------------------------------------------------------------


def test_nodes_allowlist_holds_one_enode_per_validator_matching_its_key(network):
    allowlist = toml_of(network / "permissions_config.toml")["nodes-allowlist"]
    assert allowlist == [enode_of(network, name) for name in NAMES]
    assert all(re.fullmatch(r"enode://[0-9a-f]{128}@[\w.-]+:30303", enode) for enode in allowlist)


def test_accounts_allowlist_holds_the_operator_and_regulator_account_addresses(network):
    allowlist = toml_of(network / "permissions_config.toml")["accounts-allowlist"]
    derived = [node_key(network / "accounts" / f"{name}.key").public_key.to_address() for name in ACCOUNTS]
    assert allowlist == derived
    assert all(re.fullmatch(r"0x[0-9a-f]{40}", address) for address in allowlist)


def test_account_keys_differ_from_every_node_key(network):
    node_keys = {node_key(network / name / "key").to_bytes() for name in NAMES}
    assert not node_keys & {node_key(network / "accounts" / f"{name}.key").to_bytes() for name in ACCOUNTS}
    assert len(node_keys) == len(NAMES)


def test_hosts_option_sets_the_host_of_each_enode(make_network, tmp_path):
    hosts = ["10.0.0.1", "10.0.0.2", "besu.regulator.example", "10.0.0.4"]
    assert make_network.main(["--out", str(tmp_path / "net"), "--hosts", ",".join(hosts)]) == 0
    allowlist = toml_of(tmp_path / "net" / "permissions_config.toml")["nodes-allowlist"]
    assert allowlist == [enode_of(tmp_path / "net", name, host) for name, host in zip(NAMES, hosts)]


# --- keys and node configs ----------------------------------------------------------------------------------------


def test_key_files_are_readable_by_their_owner_only(network):
    secrets = [network / name / "key" for name in NAMES] + [network / "accounts" / f"{a}.key" for a in ACCOUNTS]
    assert {path.stat().st_mode & 0o777 for path in secrets} == {0o600}


def test_node_key_is_bare_hex_as_besu_reads_it(network):
    assert all(re.fullmatch(r"[0-9a-f]{64}", (network / name / "key").read_text()) for name in NAMES)


def test_every_node_config_parses_and_points_at_files_that_exist(make_network, network):
    for name in NAMES:
        config = toml_of(network / name / "config.toml")
        for option in PATH_OPTIONS:
            assert on_host(network, config[option], make_network.CONTAINER_ROOT).is_file(), (name, option)
        assert on_host(network, config["node-private-key-file"], make_network.CONTAINER_ROOT) == network / name / "key"


def test_bootnodes_of_each_node_are_the_other_three_validators(network):
    for name in NAMES:
        bootnodes = toml_of(network / name / "config.toml")["bootnodes"]
        assert sorted(bootnodes) == sorted(enode_of(network, other) for other in NAMES if other != name)


def test_only_the_operator_node_serves_rpc_beyond_its_loopback(network):
    hosts = {name: toml_of(network / name / "config.toml")["rpc-http-host"] for name in NAMES}
    assert hosts == {"operator": "0.0.0.0", "regulator": "127.0.0.1", "provider1": "127.0.0.1",
                     "provider2": "127.0.0.1"}
    apis = {tuple(toml_of(network / name / "config.toml")["rpc-http-api"]) for name in NAMES}
    assert apis == {("ETH", "NET", "QBFT", "WEB3", "PERM", "TXPOOL")}


def test_every_node_enables_node_and_account_permissioning(network):
    for name in NAMES:
        config = toml_of(network / name / "config.toml")
        assert config["permissions-nodes-config-file-enabled"] is True
        assert config["permissions-accounts-config-file-enabled"] is True


# --- refusing to overwrite ----------------------------------------------------------------------------------------


def test_rerun_without_force_refuses_and_leaves_every_file_unchanged(make_network, network, capsys):
    before = snapshot(network)
    assert make_network.main(["--out", str(network)]) == 1
    assert "--force" in capsys.readouterr().err
    assert snapshot(network) == before


def test_force_replaces_the_network_with_fresh_keys(make_network, tmp_path):
    out = tmp_path / "net"
    assert make_network.main(["--out", str(out), "--validators", "a,b,c,d,e", "--rpc-node", "a"]) == 0
    old_key = (out / "a" / "key").read_text()
    assert make_network.main(["--out", str(out), "--force"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted([*NAMES, "accounts", "genesis.json",
                                                            "permissions_config.toml"])
    assert (out / "operator" / "key").read_text() != old_key


def test_force_refuses_to_delete_a_folder_that_is_not_a_network(make_network, tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    assert make_network.main(["--out", str(tmp_path), "--force"]) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.parametrize("arguments", [["--hosts", "a,b"], ["--rpc-node", "nobody"], ["--validators", "a,,b,c"],
                                       ["--validators", "a,a,b,c"], ["--chain-id", "0"]])
def test_contradictory_options_write_nothing(make_network, tmp_path, arguments):
    assert make_network.main(["--out", str(tmp_path / "net"), *arguments]) == 1
    assert not (tmp_path / "net").exists()


# --- docker-compose.yml -------------------------------------------------------------------------------------------


def test_compose_mounts_what_each_node_config_names_where_it_names_it(make_network):
    compose = (BESU_DIR / "docker-compose.yml").read_text(encoding="utf-8")
    root = make_network.CONTAINER_ROOT
    for name in NAMES:
        assert f'command: ["--config-file={root}/{name}/config.toml"]' in compose
        assert f"- ./network/{name}:{root}/{name}\n" in compose
        assert f"- {name}-data:{make_network.CONTAINER_DATA_PATH}\n" in compose
    assert compose.count(f"- ./network/genesis.json:{root}/genesis.json:ro\n") == len(NAMES)
    assert compose.count(f"- ./network/permissions_config.toml:{root}/permissions_config.toml\n") == len(NAMES)


def test_compose_publishes_only_the_operator_rpc_on_the_host_loopback():
    compose = (BESU_DIR / "docker-compose.yml").read_text(encoding="utf-8")
    assert re.findall(r'^\s+- "(\S+)"$', compose, re.MULTILINE) == ["127.0.0.1:8545:8545"]
    assert compose.count("ports:") == 1
    assert compose.index("ports:") < compose.index("\n  regulator:")


def test_compose_pins_the_besu_image():
    compose = (BESU_DIR / "docker-compose.yml").read_text(encoding="utf-8")
    assert re.findall(r"image: (\S+)", compose) == ["hyperledger/besu:25.12.0"]
