"""No import climbs the layers, and the check that says so fails on a violation."""

from __future__ import annotations

from pathlib import Path

from tests.support.layers import check_tree

ROOT = Path(__file__).resolve().parents[2]


def test_no_import_climbs_the_layers_and_hal_imports_nothing_from_edged() -> None:
    assert [str(v) for v in check_tree(ROOT)] == []


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_check_names_every_climbing_import_with_file_line_and_reason(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "edged/__init__.py": "",
            "edged/store/__init__.py": "",
            "edged/store/bad.py": "import json\nfrom edged.services.checkout import sales\n",
            "edged/link/bad.py": "def f():\n    from edged.app.daemon import Daemon\n",
            "edged/services/shop/__init__.py": "",
            "edged/services/shop/keys.py": "import edged.cloudsim.keys\n",
            "edged/services/shop/rel.py": "from ...app import daemon\n",
            "hal/scanner/driver.py": "from edged.runtime.backoff import Backoff\n",
        },
    )
    assert [str(v) for v in check_tree(root)] == [
        "edged/link/bad.py:2: edged.link.bad imports edged.app.daemon:"
        " link may not import app (a higher layer)",
        "edged/services/shop/keys.py:1: edged.services.shop.keys imports edged.cloudsim.keys:"
        " services may not import cloudsim (a higher layer)",
        "edged/services/shop/rel.py:1: edged.services.shop.rel imports edged.app:"
        " services may not import app (a higher layer)",
        "edged/store/bad.py:2: edged.store.bad imports edged.services.checkout:"
        " store may not import services (a higher layer)",
        "hal/scanner/driver.py:1: hal.scanner.driver imports edged.runtime.backoff:"
        " hal imports nothing from edged",
    ]


def test_imports_down_the_layers_and_within_one_pass(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "edged/app/daemon.py": "from edged.services.checkout import setup\n"
            "from edged.cloudsim.keys import with_backend_keys\nimport hal.factory\n",
            "edged/services/checkout/setup.py": "from edged.link.downlink import HandlerRejected\n"
            "from edged.services.payments.protocol import Payments\n",
            "edged/store/database.py": "from edged.runtime.clock import Clock\n",
            "hal/factory.py": "from hal.retry import BackoffFactory\n",
        },
    )
    assert check_tree(root) == []
