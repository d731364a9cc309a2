"""The oslo.config glue's functions, options and packaging, in process."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from oslo_config import cfg
from oslo_support import write_config

import cotyledon
from cotyledon import oslo_config_glue


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


def test_list_opts_returns_default_group_options() -> None:
    groups = oslo_config_glue.list_opts()

    assert [group for group, _ in groups] == [None]
    assert sorted(opt.name for opt in groups[0][1]) == ["graceful_shutdown_timeout", "log_options"]


def test_list_opts_returns_fresh_copies() -> None:
    first = oslo_config_glue.list_opts()[0][1]
    second = oslo_config_glue.list_opts()[0][1]

    assert not {id(opt) for opt in first} & {id(opt) for opt in second}
    assert not {id(opt) for opt in first} & {id(opt) for opt in oslo_config_glue.service_opts}


def test_register_opts_sets_defaults(conf: cfg.ConfigOpts) -> None:
    oslo_config_glue.register_opts(conf)

    assert conf.graceful_shutdown_timeout == 60
    assert conf.log_options is True


def test_register_opts_makes_them_mutable(conf: cfg.ConfigOpts) -> None:
    oslo_config_glue.register_opts(conf)

    assert all(opt.mutable for opt in oslo_config_glue.service_opts)


def test_unregister_opts_removes_options() -> None:
    conf = cfg.ConfigOpts()
    oslo_config_glue.register_opts(conf)

    oslo_config_glue.unregister_opts(conf)

    assert "graceful_shutdown_timeout" not in conf
    assert "log_options" not in conf


def test_setup_sets_manager_timeout(tmp_path: Path, manager: cotyledon.ServiceManager) -> None:
    config_file = tmp_path / "app.conf"
    write_config(config_file, graceful_shutdown_timeout=12)
    conf = cfg.ConfigOpts()
    conf(args=["--config-file", str(config_file)], default_config_dirs=[])

    oslo_config_glue.setup(manager, conf)

    assert manager._graceful_shutdown_timeout == 12


def test_link_zero_timeout_waits_forever(
    conf: cfg.ConfigOpts, manager: cotyledon.ServiceManager
) -> None:
    oslo_config_glue.register_opts(conf)
    conf.set_override("graceful_shutdown_timeout", 0)

    oslo_config_glue.link(manager, conf)

    assert manager._graceful_shutdown_timeout == 0


def test_link_rejects_unknown_reload_method(
    conf: cfg.ConfigOpts, manager: cotyledon.ServiceManager
) -> None:
    oslo_config_glue.register_opts(conf)

    with pytest.raises(cotyledon.InvalidArgumentError) as raised:
        oslo_config_glue.link(manager, conf, reload_method="restart")  # type: ignore[arg-type]

    assert isinstance(raised.value, ValueError)
    assert "'reload'" in str(raised.value)
    assert "'mutate'" in str(raised.value)
    assert "'restart'" in str(raised.value)


def test_setup_bad_method_registers_nothing(
    conf: cfg.ConfigOpts, manager: cotyledon.ServiceManager
) -> None:
    with pytest.raises(cotyledon.InvalidArgumentError):
        oslo_config_glue.setup(manager, conf, reload_method="Reload")  # type: ignore[arg-type]

    assert "graceful_shutdown_timeout" not in conf


def test_entry_point_loads_list_opts() -> None:
    (entry_point,) = importlib.metadata.entry_points(group="oslo.config.opts", name="cotyledon")

    assert entry_point.load() is oslo_config_glue.list_opts


def test_generator_writes_cotyledon_options(tmp_path: Path) -> None:
    output = tmp_path / "sample.conf"
    generator = Path(sys.executable).parent / "oslo-config-generator"

    subprocess.run(
        [generator, "--namespace", "cotyledon", "--output-file", output],
        check=True,
        capture_output=True,
        timeout=60,
    )

    sample = output.read_text()
    assert "[DEFAULT]" in sample
    assert "#graceful_shutdown_timeout = 60" in sample
    assert "#log_options = true" in sample


def test_import_cotyledon_skips_oslo_config() -> None:
    result = _run_python(
        "import sys, cotyledon, cotyledon.types\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'oslo_config'))"
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_import_glue_without_oslo_names_extra() -> None:
    # None in sys.modules makes any import of the module fail, as if it
    # were not installed.
    result = _run_python(
        "import sys\nsys.modules['oslo_config'] = None\nimport cotyledon.oslo_config_glue"
    )

    assert result.returncode == 1
    assert "ImportError" in result.stderr
    assert "pip install 'cotyledon-core[oslo]'" in result.stderr
