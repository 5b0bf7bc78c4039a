"""The backend registry: discovery through entry points, failure reporting, and backend selection.

Outside plugins are real distributions written into ``tmp_path`` (a module plus a
``<name>-0.1.dist-info`` with ``entry_points.txt``) and put on ``sys.path``, so discovery goes
through ``importlib.metadata`` exactly as for a pip-installed plugin.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import msadam
from msadam import cli, registry
from msadam.backend import Backend

REPO_ROOT = Path(__file__).resolve().parents[1]

# A plugin module announcing numpy-based backends under the names in NAMES (a format field).
MULTI_PLUGIN = """
from msadam.backend import BackendSpec
from msadam.backends.numpy_backend import NumpyBackend
from msadam.hookspecs import hookimpl

NAMES = {names!r}


def _backend_class(name):
    return type("Backend_" + name, (NumpyBackend,), {{"name": name, "version": lambda self: "0.1-" + self.name}})


@hookimpl
def msadam_backends():
    return [BackendSpec(name, _backend_class(name)) for name in NAMES]
"""

FAKE_ARRAYS = """
class FakeArray:
    def __init__(self, value):
        self.value = value
"""

# A backend plugin's module head: a NumPy backend that owns fake_arrays.FakeArray (tests add its hooks).
NATIVE_BACKEND = """
from fake_arrays import FakeArray
from msadam.backend import BackendSpec
from msadam.backends.numpy_backend import NumpyBackend
from msadam.hookspecs import hookimpl


class Native(NumpyBackend):
    name = "native"

    def owns(self, array):
        return isinstance(array, FakeArray)

    def shape(self, array):
        return array.value.shape

    def dtype(self, array):
        return array.value.dtype
"""


def write_distribution(root: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    """Write ``modules`` (name -> source) and an installed distribution ``dist`` declaring ``entry_points``."""
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n", encoding="utf-8")
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{lines}", encoding="utf-8")


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No selection from the environment or the working directory; a fresh registry; plugin modules unloaded."""
    monkeypatch.delenv(registry.ENV_BACKEND, raising=False)
    monkeypatch.delenv(registry.ENV_CONFIG, raising=False)
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    registry.reset()
    yield
    registry.reset()
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


@pytest.fixture
def installed() -> list[str]:
    """The backends really installed here (numpy, and whichever framework plugins are present)."""
    names = registry.available_backends()
    registry.reset()
    return names


@pytest.fixture
def plugin_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A directory on ``sys.path`` to install fake plugin distributions into."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(root)
    return root


@pytest.fixture
def multi(plugin_dir: Path) -> tuple[str, ...]:
    """Four extra numpy-based backends, one per selection layer."""
    names = ("cfg", "env", "glob", "ctx")
    write_distribution(plugin_dir, "multi-plugin", {"multi_plugin": MULTI_PLUGIN.format(names=names)},
                       {"multi": "multi_plugin"})
    registry.reset()
    return names


def enter_use_backend(name: str) -> None:
    with msadam.use_backend(name):
        pass


def set_config(path: Path, backend: str) -> Path:
    path.write_text(f'[tool.msadam]\nbackend = "{backend}"\n', encoding="utf-8")
    return path


# --- selection precedence -------------------------------------------------------------------------


def test_default_is_numpy() -> None:
    assert registry.backend_choice() == ("numpy", "default")
    assert isinstance(registry.current_backend(), Backend)
    assert registry.current_backend().name == "numpy"


@pytest.mark.parametrize("config_by", ["MSADAM_CONFIG", "cwd"])
def test_precedence_context_over_set_over_env_over_config_over_default(
    multi: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config_by: str
) -> None:
    if config_by == "cwd":
        config = set_config(Path.cwd() / "msadam.toml", "cfg")
    else:
        config = set_config(tmp_path / "elsewhere.toml", "cfg")
        monkeypatch.setenv("MSADAM_CONFIG", str(config))
    assert registry.backend_choice() == ("cfg", str(config))
    monkeypatch.setenv("MSADAM_BACKEND", "env")
    assert registry.backend_choice() == ("env", "$MSADAM_BACKEND")
    msadam.set_backend("glob")
    assert registry.backend_choice() == ("glob", "set_backend")
    with msadam.use_backend("ctx") as backend:
        assert backend.name == "ctx"
        assert registry.backend_choice() == ("ctx", "use_backend")
        assert registry.current_backend().name == "ctx"
    assert msadam.get_backend() == "glob"
    msadam.set_backend(None)
    assert msadam.get_backend() == "env"
    monkeypatch.delenv("MSADAM_BACKEND")
    assert msadam.get_backend() == "cfg"
    config.unlink()
    monkeypatch.delenv("MSADAM_CONFIG", raising=False)
    assert msadam.get_backend() == "numpy"


def test_msadam_config_wins_over_cwd_file(multi: tuple[str, ...], monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    set_config(Path.cwd() / "msadam.toml", "ctx")
    monkeypatch.setenv("MSADAM_CONFIG", str(set_config(tmp_path / "chosen.toml", "cfg")))
    assert msadam.get_backend() == "cfg"


def test_use_backend_nests_and_restores_after_an_exception(multi: tuple[str, ...]) -> None:
    with pytest.raises(KeyError), msadam.use_backend("ctx"):
        with msadam.use_backend("glob"):
            assert msadam.get_backend() == "glob"
        assert msadam.get_backend() == "ctx"
        raise KeyError("boom")
    assert msadam.get_backend() == "numpy"


def test_use_backend_is_local_to_its_context(multi: tuple[str, ...]) -> None:
    seen: list[str] = []
    with msadam.use_backend("ctx"):
        thread = threading.Thread(target=lambda: seen.append(msadam.get_backend()))
        thread.start()
        thread.join()
    assert seen == ["numpy"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[tool.msadam\n", "Cannot read msadam configuration"),
        ("[tool.msadam]\nbackend = 3\n", "must be a non-empty string"),
        ("tool = 1\n", "[tool.msadam] must be a table"),
    ],
)
def test_unreadable_config_is_a_value_error(content: str, message: str) -> None:
    (Path.cwd() / "msadam.toml").write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=r"msadam\.toml") as info:
        msadam.get_backend()
    assert message in str(info.value)


@pytest.mark.parametrize("content", ["", "[tool.other]\nbackend = 'x'\n", "[tool.msadam]\nother = 1\n"])
def test_config_without_a_backend_falls_back_to_numpy(content: str) -> None:
    (Path.cwd() / "msadam.toml").write_text(content, encoding="utf-8")
    assert registry.backend_choice() == ("numpy", "default")


def test_msadam_config_naming_a_missing_file_is_a_value_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSADAM_CONFIG", "no-such-file.toml")
    with pytest.raises(ValueError, match=r"\$MSADAM_CONFIG names 'no-such-file.toml', which is not a file"):
        msadam.get_backend()


# --- unknown and broken backends -------------------------------------------------------------------


@pytest.mark.parametrize(
    "select",
    [registry.load_backend, msadam.set_backend, enter_use_backend],
    ids=["load_backend", "set_backend", "use_backend"],
)
def test_unknown_backend_lists_the_installed_ones(multi: tuple[str, ...], select: object) -> None:
    with pytest.raises(ValueError, match=r"Unknown msadam backend 'nope'\. Installed backends: numpy, ") as info:
        select("nope")  # type: ignore[operator]
    listed = str(info.value).partition("Installed backends: ")[2].partition(".")[0].split(", ")
    assert set(multi) <= set(listed)
    assert msadam.get_backend() == "numpy"  # nothing changed


def test_unknown_backend_from_the_environment_names_its_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MSADAM_BACKEND", "nope")
    assert msadam.get_backend() == "nope"
    with pytest.raises(ValueError, match=r"Installed backends: numpy.*chosen by \$MSADAM_BACKEND"):
        msadam.Parameter(np.ones(2, np.float32))


@pytest.mark.parametrize("name", [None, 3, b"numpy"])
def test_backend_name_must_be_a_string(name: object) -> None:
    with pytest.raises(TypeError, match="must be str"):
        registry.load_backend(name)  # type: ignore[arg-type]


BROKEN_LOADS = {
    "raises": ("def load():\n    raise ImportError(\"No module named 'fancyframework'\")",
               "ImportError: No module named 'fancyframework'"),
    "not_a_backend": ("def load():\n    return object()", "does not implement msadam.backend.Backend (missing: assign"),
    "wrong_name": ("def load():\n    return NumpyBackend()", "a backend named 'numpy', but the spec names it 'broken'"),
    "version_raises": (
        "class B(NumpyBackend):\n    name = 'broken'\n    def version(self):\n        raise OSError('no driver')\n"
        "def load():\n    return B()",
        "OSError: no driver",
    ),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_LOADS))
def test_broken_backend_is_reported_and_never_breaks_numpy(
    installed: list[str], plugin_dir: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    load_source, reason = BROKEN_LOADS[kind]
    source = (
        "from msadam.backend import BackendSpec\nfrom msadam.backends.numpy_backend import NumpyBackend\n"
        f"from msadam.hookspecs import hookimpl\n{load_source}\n"
        "@hookimpl\ndef msadam_backends():\n    return [BackendSpec('broken', load)]\n"
    )
    write_distribution(plugin_dir, "broken-plugin", {f"broken_{kind}": source}, {"broken": f"broken_{kind}"})
    registry.reset()
    assert registry.available_backends() == installed
    with pytest.raises(ValueError, match="'broken' is installed but cannot be used") as info:
        enter_use_backend("broken")
    assert reason in str(info.value)
    assert info.value.__cause__ is not None  # the plugin's own exception, for its traceback
    status = {s.name: s for s in registry.backend_status()}
    assert status["numpy"].ok
    assert not status["broken"].ok
    assert reason in (status["broken"].error or "")
    assert status["broken"].distribution == "broken-plugin"
    assert msadam.Parameter(np.ones(2, np.float32)).backend == "numpy"
    assert cli.main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "broken" in out and "FAILED" in out and reason in out


BROKEN_PLUGINS = {
    "import_raises": ("raise RuntimeError('plugin exploded on import')", "RuntimeError: plugin exploded on import"),
    "hook_raises": (
        "from msadam.hookspecs import hookimpl\n@hookimpl\ndef msadam_backends():\n    raise KeyError('cuda')",
        "msadam_backends raised KeyError: 'cuda'",
    ),
    "hook_returns_garbage": (
        "from msadam.hookspecs import hookimpl\n@hookimpl\ndef msadam_backends():\n    return ['torch']",
        "msadam_backends returned 'torch', which is not a msadam.backend.BackendSpec",
    ),
    "hook_returns_one_spec": (
        "from msadam.backend import BackendSpec\nfrom msadam.hookspecs import hookimpl\n"
        "@hookimpl\ndef msadam_backends():\n    return BackendSpec('x', object)",
        "msadam_backends returned BackendSpec, not a list of msadam.backend.BackendSpec",
    ),
    "no_hookimpl": ("def msadam_backends():\n    return []", "implements no msadam hook"),
    "misspelled_hook": (
        "from msadam.hookspecs import hookimpl\n@hookimpl\ndef msadam_backend():\n    return []",
        "unknown hooks: msadam_backend",
    ),
    "queries_registry_on_import": (
        "import msadam.registry\nmsadam.registry.available_backends()",
        "cannot be queried while plugins are being discovered",
    ),
}


@pytest.mark.parametrize("kind", sorted(BROKEN_PLUGINS))
def test_broken_plugin_is_reported_and_never_breaks_numpy(
    installed: list[str], plugin_dir: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source, reason = BROKEN_PLUGINS[kind]
    write_distribution(plugin_dir, "bad-plugin", {f"bad_{kind}": source}, {"bad": f"bad_{kind}"})
    registry.reset()
    assert registry.available_backends() == installed
    assert registry.load_backend("numpy").name == "numpy"
    failures = [s for s in registry.backend_status() if s.plugin.startswith("bad ")]
    assert [(s.plugin, s.distribution) for s in failures] == [(f"bad (bad_{kind})", "bad-plugin")]
    assert reason in (failures[0].error or "")
    with pytest.raises(ValueError, match=r"Unknown msadam backend 'bad'.*Not usable: bad \(bad_"):
        registry.load_backend("bad")
    assert cli.main(["backends", "--strict"]) == 1
    assert reason in capsys.readouterr().out


# --- discovery ------------------------------------------------------------------------------------


def test_plugin_manager_is_built_lazily_and_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    entry_points = metadata.entry_points

    def counting_entry_points(group: str) -> metadata.EntryPoints:
        calls.append(group)
        return entry_points(group=group)

    monkeypatch.setattr(registry.metadata, "entry_points", counting_entry_points)
    msadam.get_backend()
    assert calls == []  # choosing a name needs no discovery
    managers = []
    threads = [threading.Thread(target=lambda: managers.append(registry.plugin_manager())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    registry.available_backends()
    managers.append(registry.plugin_manager())
    assert calls == ["msadam.backends"]
    assert all(manager is managers[0] for manager in managers)
    plugins = [plugin for _, plugin in managers[0].list_name_plugin()]
    assert len(plugins) == len({id(p) for p in plugins})
    impls = managers[0].hook.msadam_backends.get_hookimpls()
    assert len(impls) == len(plugins)
    # the NumPy module is both built in and declared as an entry point: registered once, no failure
    numpy_rows = [s for s in registry.backend_status() if "msadam.backends.numpy_backend" in s.plugin]
    assert [(s.name, s.ok) for s in numpy_rows] == [("numpy", True)]
    registry.reset()
    assert registry.plugin_manager() is not managers[0]
    assert len(registry.plugin_manager().list_name_plugin()) == len(plugins)
    assert calls == ["msadam.backends"] * 2


def test_outside_plugin_is_discovered_through_its_entry_point(installed: list[str], plugin_dir: Path) -> None:
    assert "fake" not in registry.available_backends()
    write_distribution(
        plugin_dir,
        "fake-plugin",
        {
            "fake_plugin": """
            import msadam.hookspecs
            from msadam.backend import BackendSpec
            from msadam.backends.numpy_backend import NumpyBackend


            class FakeBackend(NumpyBackend):
                name = "fake"

                def version(self) -> str:
                    return "0.1-fake"


            @msadam.hookspecs.hookimpl
            def msadam_backends() -> list[BackendSpec]:
                return [BackendSpec("fake", FakeBackend)]
            """
        },
        {"fake": "fake_plugin"},
    )
    assert "fake" not in registry.available_backends()  # discovery happened once, before the plugin existed
    registry.reset()
    assert registry.available_backends() == sorted([*installed, "fake"], key=lambda n: (n != "numpy", n))
    with msadam.use_backend("fake"):
        param = msadam.Parameter(np.ones(2, np.float32))
    assert param.backend == "fake"
    assert type(param.data) is np.ndarray
    assert msadam.Parameter(np.ones(2, np.float32)).backend == "numpy"
    status = {s.name: s for s in registry.backend_status()}["fake"]
    assert (status.ok, status.version, status.devices) == (True, "0.1-fake", ("cpu",))
    assert (status.plugin, status.distribution) == ("fake (fake_plugin)", "fake-plugin")


def test_the_smallest_priority_wins_a_name_clash(plugin_dir: Path) -> None:
    source = """
    from msadam.backend import BackendSpec
    from msadam.backends.numpy_backend import NumpyBackend
    from msadam.hookspecs import hookimpl


    def variant(tag):
        return type(tag, (NumpyBackend,), {"name": "twin", "version": lambda self: tag})


    @hookimpl
    def msadam_backends():
        return [BackendSpec("twin", variant("default")), BackendSpec("twin", variant("preferred"), priority=10),
                BackendSpec("twin", variant("fallback"), priority=200)]
    """
    write_distribution(plugin_dir, "twin-plugin", {"twin_plugin": source}, {"twin": "twin_plugin"})
    registry.reset()
    assert registry.load_backend("twin").version() == "preferred"


# --- arrays and backends ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", [np.ones(2, np.float32), np.float32(1.0), np.int64(3), 1, 1.5, True, [1.0, 2.0], msadam.Tensor(1.0)]
)
def test_host_values_have_no_backend(value: object) -> None:
    assert registry.backend_for_array(value) is None


def test_a_native_array_takes_its_backend(plugin_dir: Path) -> None:
    source = NATIVE_BACKEND + textwrap.dedent("""

    @hookimpl
    def msadam_backends():
        return [BackendSpec("native", Native, array_modules=("fake_arrays",))]
    """)
    write_distribution(plugin_dir, "native-plugin", {"native_plugin": source, "fake_arrays": FAKE_ARRAYS},
                       {"native": "native_plugin"})
    registry.reset()
    fake_arrays = __import__("fake_arrays")
    array = fake_arrays.FakeArray(np.zeros((2, 3), np.float32))
    assert registry.backend_for_array(array) is registry.load_backend("native")
    param = msadam.Parameter(array, name="w")  # the current backend is numpy: the array decides
    assert (param.backend, param.shape, param.data) == ("native", (2, 3), array)


def test_importing_msadam_imports_no_framework() -> None:
    code = (
        "import sys, numpy as np, msadam\n"
        "msadam.Parameter(np.ones(2, np.float32))\n"
        "print(sorted(m for m in ('torch', 'jax', 'tensorflow', 'mindspore', 'keras') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")


# --- isolation: every kind of broken plugin at once, beside working ones ----------------------------------

SPEC_HEADER = (
    "import sys\nfrom msadam.backend import BackendSpec\nfrom msadam.backends.numpy_backend import NumpyBackend\n"
    "from msadam.hookspecs import hookimpl\n"
)
# plugin module -> (its source, the backend or plugin row that must fail, the reason it must give).
# A failure before any spec is announced is a row named "<entry point (module)>".
ISOLATION_PLUGINS = {
    "iso_import": ("raise ImportError(\"No module named 'fancyframework'\")", "<iso_import (iso_import)>",
                   "ImportError: No module named 'fancyframework'"),
    "iso_import_exits": ("import sys\nsys.exit('this plugin needs a GPU')", "<iso_import_exits (iso_import_exits)>",
                         "SystemExit: this plugin needs a GPU"),
    "iso_hook": (SPEC_HEADER + "@hookimpl\ndef msadam_backends():\n    raise KeyError('cuda')",
                 "<iso_hook (iso_hook)>", "msadam_backends raised KeyError: 'cuda'"),
    "iso_hook_exits": (SPEC_HEADER + "@hookimpl\ndef msadam_backends():\n    sys.exit(4)",
                       "<iso_hook_exits (iso_hook_exits)>", "msadam_backends raised SystemExit: 4"),
    "iso_load": (SPEC_HEADER + "def load():\n    raise OSError('libfancy.so: cannot open shared object file')\n"
                 "@hookimpl\ndef msadam_backends():\n    return [BackendSpec('loadfails', load)]",
                 "loadfails", "OSError: libfancy.so: cannot open shared object file"),
    "iso_load_exits": (SPEC_HEADER + "def load():\n    sys.exit('no licence')\n"
                       "@hookimpl\ndef msadam_backends():\n    return [BackendSpec('loadexits', load)]",
                       "loadexits", "SystemExit: no licence"),
    "iso_devices": (SPEC_HEADER + "class B(NumpyBackend):\n    name = 'nodevices'\n"
                    "    def devices(self):\n        raise RuntimeError('driver gone')\n"
                    "@hookimpl\ndef msadam_backends():\n    return [BackendSpec('nodevices', B)]",
                    "nodevices", "RuntimeError: driver gone"),
    "iso_bench": (SPEC_HEADER + "class B(NumpyBackend):\n    name = 'benchy'\n"
                  "@hookimpl\ndef msadam_backends():\n    return [BackendSpec('benchy', B)]\n"
                  "@hookimpl\ndef msadam_bench_baselines():\n    raise RuntimeError('baseline registry offline')",
                  None, None),  # a working backend; only `msadam bench` sees its broken baselines hook
}


@pytest.fixture
def zoo(plugin_dir: Path) -> list[str]:
    """A working outside backend ("fake") installed beside every kind of broken plugin, each its own distribution."""
    write_distribution(plugin_dir, "good-plugin", {"iso_good": MULTI_PLUGIN.format(names=("fake",))},
                       {"good": "iso_good"})
    for module, (source, _, _) in ISOLATION_PLUGINS.items():
        write_distribution(plugin_dir, module.replace("_", "-"), {module: source}, {module: module})
    registry.reset()
    return ["fake", "benchy"]


def test_broken_plugins_of_every_kind_are_reported_together_and_break_nothing(
    installed: list[str], zoo: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    usable = [*installed, *zoo, "nodevices"]  # devices() is only called to report the backend
    assert registry.available_backends() == sorted(usable, key=lambda n: (n != "numpy", n))
    for name in zoo:  # the working outside backends work
        with msadam.use_backend(name):
            param = msadam.Parameter(np.ones(3, np.float32), name="w")
        assert msadam.Adam([param], learning_rate=0.1)((np.ones(3, np.float32),)) == (True,)
        assert param.backend == name and param.asnumpy()[0] < 1
    status = {s.name: s for s in registry.backend_status()}
    for _, row, reason in ISOLATION_PLUGINS.values():
        if row is not None:
            assert not status[row].ok and reason in (status[row].error or ""), row
    assert all(status[name].ok for name in [*installed, *zoo])

    assert cli.main(["backends", "--json"]) == 0
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)["backends"]}
    assert set(listed) == set(status)
    for module, (_, row, reason) in ISOLATION_PLUGINS.items():
        if row is not None:
            assert (listed[row]["ok"], listed[row]["distribution"]) == (False, module.replace("_", "-"))
            assert reason in listed[row]["error"], row
    assert cli.main(["backends", "--strict"]) == 1
    table = capsys.readouterr().out
    assert all(reason in table for _, row, reason in ISOLATION_PLUGINS.values() if reason is not None)
    assert "selected: numpy (from default)" in table


def test_bench_reports_a_raising_baselines_hook_and_measures_the_rest(
    zoo: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(["bench", "--backends", "fake,benchy", "--sizes", "1e3", "--tensors", "1", "--repeats", "1",
                     "--json"])
    out, err = capsys.readouterr()
    document = json.loads(out)
    assert code == 1 and err == ""  # the raising hook is a failure, reported
    assert document["failures"] == [
        "plugin iso_bench (iso_bench): msadam_bench_baselines raised RuntimeError: baseline registry offline"]
    assert {r["backend"]: r["msadam"]["error"] for r in document["results"]} == {"fake": None, "benchy": None}
    assert all(r["msadam"]["seconds"] > 0 for r in document["results"])


@pytest.mark.parametrize("name", ["loadfails", "loadexits", "nope"])
def test_bench_names_why_a_requested_backend_cannot_run(zoo: list[str], name: str,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bench", "--backends", f"numpy,{name}", "--sizes", "1e3", "--tensors", "1"]) == 2
    err = capsys.readouterr().err
    reasons = {row: reason for _, row, reason in ISOLATION_PLUGINS.values()}
    expected = reasons.get(name, "Unknown msadam backend 'nope'. Installed backends: numpy")
    assert expected in err and err.startswith("msadam: error:")


def test_a_broken_backend_claiming_an_array_module_does_not_take_its_arrays(plugin_dir: Path) -> None:
    """A backend that announces ``array_modules`` but cannot load (or whose ``owns`` raises) is skipped when
    finding the owner of an array: the working backend of that module still gets it."""
    source = NATIVE_BACKEND + textwrap.dedent("""

    class Confused(Native):
        name = "confused"

        def owns(self, array):
            raise AttributeError("'FakeArray' object has no attribute 'device'")


    def broken():
        raise ImportError("No module named 'fake_arrays_cuda'")


    @hookimpl
    def msadam_backends():
        return [BackendSpec("broken", broken, array_modules=("fake_arrays",)),
                BackendSpec("confused", Confused, array_modules=("fake_arrays",)),
                BackendSpec("native", Native, array_modules=("fake_arrays",))]
    """)
    write_distribution(plugin_dir, "claims-plugin", {"claims_plugin": source, "fake_arrays": FAKE_ARRAYS},
                       {"claims": "claims_plugin"})
    registry.reset()
    array = __import__("fake_arrays").FakeArray(np.zeros((2, 3), np.float32))
    assert registry.backend_for_array(array) is registry.load_backend("native")
    assert msadam.Parameter(array, name="w").backend == "native"
    status = {s.name: s for s in registry.backend_status()}
    assert not status["broken"].ok and "fake_arrays_cuda" in (status["broken"].error or "")
