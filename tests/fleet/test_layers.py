"""Remote config layers over the local file: what merges, what is refused, and why."""

from __future__ import annotations

import pytest

from edged.config import ConfigError
from edged.config.layers import build_config, effective_hash, local_only_keys, merge_layers, origins

FILE = {
    "device": {"site": "s1", "id": "k1"},
    "checkout": {"shop_name": "本店", "inactivity_timeout_s": 90},
    "printer": {"driver": "sim", "paper_mm": 80},
    "broker": {"password": "file-secret"},
}


def test_layers_merge_field_by_field_in_fleet_site_device_order() -> None:
    layers = {
        "device": {"version": 2, "layer": {"checkout": {"inactivity_timeout_s": 30}}},
        "fleet": {
            "version": 9,
            "layer": {"checkout": {"inactivity_timeout_s": 60, "shop_name": "连锁"}},
        },
        "site": {"version": 4, "layer": {"health": {"interval_s": 5}}},
    }

    config = build_config(FILE, layers)

    assert config.checkout.inactivity_timeout_s == 30  # device beats fleet
    assert config.checkout.shop_name == "连锁"  # fleet beats the file
    assert config.health.interval_s == 5
    assert config.device.id == "k1"
    assert origins(FILE, layers)["checkout.inactivity_timeout_s"] == "device v2"
    assert origins(FILE, layers)["checkout.shop_name"] == "fleet v9"
    assert origins(FILE, layers)["device.id"] == "file"


def test_a_table_that_changes_its_driver_replaces_the_whole_table() -> None:
    merged = merge_layers(FILE, {"printer": {"driver": "network", "host": "10.0.0.5"}})

    assert merged["printer"] == {"driver": "network", "host": "10.0.0.5"}
    assert FILE["printer"] == {"driver": "sim", "paper_mm": 80}  # the base is not touched


def test_identity_paths_and_secrets_belong_to_the_file() -> None:
    layer = {
        "device": {"id": "k2"},
        "broker": {"password": "x", "host": "b2"},
        "security": {"technician_token": "t", "max_clock_skew_s": 10},
    }

    assert local_only_keys(layer) == [
        "broker.password",
        "device.id",
        "security.technician_token",
    ]
    with pytest.raises(ConfigError) as refused:
        build_config(FILE, {"site": {"version": 3, "layer": layer}})
    assert refused.value.problems == [
        "site v3: broker.password: only the local config file may set this",
        "site v3: device.id: only the local config file may set this",
        "site v3: security.technician_token: only the local config file may set this",
    ]


def test_a_bad_value_is_named_by_the_layer_that_brought_it() -> None:
    layers = {
        "fleet": {"version": 1, "layer": {"health": {"interval_s": 10}}},
        "device": {"version": 5, "layer": {"payments": {"deadline_s": 1}}},
    }

    with pytest.raises(ConfigError) as refused:
        build_config(FILE, layers)

    assert refused.value.problems == [
        "device v5: payments.deadline_s: Input should be greater than or equal to 5"
    ]


def test_the_effective_hash_changes_with_any_value_secrets_included_but_never_shows_them() -> None:
    base = build_config(FILE, {})
    other_secret = build_config({**FILE, "broker": {"password": "other"}}, {})
    same = build_config(dict(FILE), {})

    assert effective_hash(base) == effective_hash(same)
    assert effective_hash(base) != effective_hash(other_secret)
    assert len(effective_hash(base)) == 64


def test_a_layer_may_rotate_the_trusted_keys_but_never_empty_them() -> None:
    new_key = "A" * 43 + "="
    rotated = build_config(
        FILE, {"fleet": {"version": 2, "layer": {"security": {"trusted_keys": [new_key]}}}}
    )

    assert rotated.security.trusted_keys == [new_key]
    with pytest.raises(ConfigError) as refused:
        build_config(FILE, {"fleet": {"version": 3, "layer": {"security": {"trusted_keys": []}}}})
    assert refused.value.problems == [
        "fleet v3: security.trusted_keys: may not be empty: no signed message, this layer's "
        "undoing included, could reach the device again"
    ]
