"""digitlab.models.backend: a JAX process never pays for importing TensorFlow, a TensorFlow one still works."""

import subprocess
import sys
import textwrap

import pytest


def run_python(code: str, backend: str | None = None) -> str:
    """Run `code` in a fresh interpreter (the backend and TensorFlow's loading are per process)."""
    env_code = "import os; os.environ.pop('KERAS_BACKEND', None)\n"
    done = subprocess.run([sys.executable, "-c", env_code + textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow  # a cold process that imports TensorFlow (as do the other slow ones here)
def test_a_jax_process_saves_loads_and_seeds_without_importing_tensorflow(tmp_path):
    out = run_python(f"""
        import sys
        from digitlab.models.backend import select_backend
        print(select_backend("jax"))
        import keras, numpy as np
        keras.utils.set_random_seed(0)  # seeds TensorFlow too, when it is loaded
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        model.save(r"{tmp_path / 'm.keras'}")
        again = keras.saving.load_model(r"{tmp_path / 'm.keras'}")
        same = np.allclose(model.predict(np.ones((2, 4)), verbose=0), again.predict(np.ones((2, 4)), verbose=0))
        print("tensorflow" in sys.modules, same)
        # Loaded later by the user, TensorFlow is seen, and seeded, from then on.
        import tensorflow as tf
        from keras.src.utils.module_utils import tensorflow as lazy
        keras.utils.set_random_seed(7); a = float(tf.random.uniform(()))
        keras.utils.set_random_seed(7); b = float(tf.random.uniform(()))
        print(lazy.available, a == b)
    """)
    assert out.split() == ["jax", "False", "True", "True", "True"]


@pytest.mark.slow
def test_keras_layers_that_need_tensorflow_still_get_it():
    out = run_python("""
        import sys
        from digitlab.models.backend import select_backend
        select_backend("jax")
        import keras
        layer = keras.layers.Hashing(num_bins=3)  # refuses to build where TensorFlow is missing
        print(type(layer).__name__, "tensorflow" in sys.modules)
    """)
    assert out.split() == ["Hashing", "True"]


@pytest.mark.slow
def test_the_tensorflow_backend_still_imports_tensorflow():
    out = run_python("""
        import sys
        from digitlab.models.backend import select_backend
        print(select_backend("tensorflow"), "tensorflow" in sys.modules)
    """)
    assert out.split() == ["tensorflow", "True"]


def test_where_keras_has_no_such_module_nothing_changes(monkeypatch):
    from keras.src.saving import serialization_lib
    from keras.src.utils import module_utils, rng_utils

    from digitlab.models.backend import keep_tensorflow_unloaded

    monkeypatch.delattr(module_utils, "LazyModule")
    assert keep_tensorflow_unloaded() is False
    monkeypatch.undo()
    for module in (serialization_lib, rng_utils):
        monkeypatch.setattr(module, "tf", None)
    assert keep_tensorflow_unloaded() is False


def test_convolutional_networks_train_on_tensorflow_where_it_runs_onednn(monkeypatch):
    import digitlab.models.backend as backend

    monkeypatch.setattr(backend.platform, "system", lambda: "Linux")
    monkeypatch.setattr(backend.platform, "machine", lambda: "x86_64")
    avx2 = frozenset({"sse4_2", "avx", "avx2", "fma"})
    avx512 = avx2 | {"avx512f", "avx512bw", "avx512_vnni", "avx512_bf16"}
    assert backend.convnet_backend(avx2, {}) == "jax"
    assert backend.convnet_backend(avx512, {}) == "tensorflow"
    assert backend.convnet_backend(avx2 | {"avx_vnni"}, {}) == "tensorflow"
    # TensorFlow's own switch, read as TensorFlow reads it
    assert backend.convnet_backend(avx512, {"TF_ENABLE_ONEDNN_OPTS": "0"}) == "jax"
    assert backend.convnet_backend(avx512, {"TF_ENABLE_ONEDNN_OPTS": "False"}) == "jax"
    assert backend.convnet_backend(avx512, {"TF_ENABLE_ONEDNN_OPTS": ""}) == "tensorflow"
    # oneDNN forced on for a CPU without its features: TensorFlow gained nothing there (measured on AVX2)
    assert backend.tensorflow_uses_onednn(avx2, {"TF_ENABLE_ONEDNN_OPTS": "1"})
    assert backend.convnet_backend(avx2, {"TF_ENABLE_ONEDNN_OPTS": "1"}) == "jax"
    # TensorFlow lowercases the setting but does not strip it: " 0" is no setting, so its default holds
    assert backend.tensorflow_uses_onednn(avx512, {"TF_ENABLE_ONEDNN_OPTS": " 0"})
    monkeypatch.setattr(backend.platform, "machine", lambda: "aarch64")  # oneDNN's x86 kernels only
    assert backend.convnet_backend(avx512, {}) == "jax"


@pytest.mark.slow  # three cold processes
def test_the_onednn_rule_agrees_with_tensorflow_on_this_machine():
    """digitlab decides without importing TensorFlow; TensorFlow's own answer must be the same."""
    code = """
        import os
        from digitlab.models.backend import tensorflow_uses_onednn
        ours = tensorflow_uses_onednn()
        from tensorflow.python.util import _pywrap_util_port
        print(ours, _pywrap_util_port.IsMklEnabled())
    """
    import platform

    from digitlab.models.backend import tensorflow_uses_onednn

    if platform.system() != "Linux" or platform.machine() != "x86_64":  # TensorFlow's rules differ there
        assert not tensorflow_uses_onednn()  # and digitlab keeps the CNNs on JAX
        return
    for setting in (None, "1", " 0"):  # the default, on, and off as TensorFlow parses it (spaces trimmed)
        prefix = "" if setting is None else f"os.environ['TF_ENABLE_ONEDNN_OPTS'] = {setting!r}\n"
        ours, theirs = run_python(prefix + textwrap.dedent(code)).split()
        assert ours == theirs, (setting, ours, theirs)


def test_cpu_flags_reads_this_machines_cpu():
    import platform

    from digitlab.models.backend import cpu_flags

    flags = cpu_flags()
    if platform.system() == "Linux" and platform.machine() == "x86_64":
        assert {"sse2", "fpu"} <= flags and not any(":" in f for f in flags)  # every x86-64 CPU has both


def test_bfloat16_is_fast_where_tensorflow_runs_onednn_on_bfloat16_instructions(monkeypatch):
    import digitlab.models.backend as backend

    monkeypatch.setattr(backend.platform, "system", lambda: "Linux")
    monkeypatch.setattr(backend.platform, "machine", lambda: "x86_64")
    vnni = frozenset({"avx2", "avx512f", "avx512_vnni"})  # oneDNN, but no bfloat16 instructions
    assert not backend.bfloat16_is_fast(vnni, {})
    assert backend.bfloat16_is_fast(vnni | {"avx512_bf16"}, {})
    assert backend.bfloat16_is_fast(frozenset({"avx2", "amx_tile", "amx_bf16"}), {})
    assert not backend.bfloat16_is_fast(vnni | {"avx512_bf16"}, {"TF_ENABLE_ONEDNN_OPTS": "0"})


def test_planned_backend_is_what_select_backend_gives_without_importing_keras(monkeypatch):
    code = """
        import os, sys
        from digitlab.models.backend import planned_backend, select_backend
        before = planned_backend("tensorflow"), planned_backend(None)
        os.environ["KERAS_BACKEND"] = "jax"
        print(*before, planned_backend("tensorflow"), "keras" in sys.modules)
        del os.environ["KERAS_BACKEND"]
        print(select_backend("jax"), planned_backend("tensorflow"))
    """
    assert run_python(code).split() == ["tensorflow", "jax", "jax", "False", "jax", "jax"]


def test_keras_is_imported_while_the_data_are_read_in_a_fresh_process(tmp_path):
    """Issue 24: the training's data load and Keras' import overlap; the wait gives the backend,
    and the data are what they would be read alone."""
    out = run_python("""
        import sys, numpy as np
        from digitlab.models.backend import select_backend_meanwhile
        wait = select_backend_meanwhile("jax")
        from digitlab.data.userdata import load_dataset
        (x, y), _ = load_dataset("mnist", progress=False)
        print(wait(), "keras" in sys.modules, x.shape, int(y[:100].sum()))
    """)
    from digitlab.data.userdata import load_dataset

    (_, y), _ = load_dataset("mnist", progress=False)
    assert out.split() == ["jax", "True", "(60000,", "28,", "28)", str(int(y[:100].sum()))]


def test_an_import_that_fails_in_the_background_fails_the_wait(monkeypatch):
    from digitlab.models import backend

    def broken(preferred=None):
        raise ImportError("no Keras here")

    monkeypatch.setattr(backend, "select_backend", broken)
    wait = backend.select_backend_meanwhile("jax")
    with pytest.raises(ImportError, match="no Keras here"):
        wait()


def test_a_data_error_is_the_one_shown_when_both_fail(monkeypatch, tmp_path):
    from digitlab.errors import DigitlabError
    from digitlab.lab import pipeline
    from digitlab.models import backend, config_for

    monkeypatch.setattr(backend, "select_backend", lambda preferred=None: (_ for _ in ()).throw(ImportError("x")))
    with pytest.raises(DigitlabError, match="which is not a folder"):
        pipeline._load_splits(config_for("mlp"), tmp_path / "no data here")


def test_keras_is_imported_without_what_digitlab_never_uses_through_it_and_they_import_afterwards():
    """Issue 24: scikit-learn, matplotlib and pandas are hidden while digitlab imports Keras
    (1.9 s -> 1.4 s with JAX); a model still trains, and each of them imports as usual after."""
    out = run_python("""
        import sys
        from digitlab.models.backend import select_backend
        select_backend("jax")
        print(sorted(n for n in ("sklearn", "matplotlib", "pandas") if n in sys.modules))
        import keras, numpy as np
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss="categorical_crossentropy")
        model.fit(np.zeros((8, 4)), np.eye(3)[np.arange(8) % 3], epochs=1, verbose=0)
        import matplotlib.pyplot, pandas, sklearn.linear_model
        print(pandas.DataFrame({"a": [1]}).shape, matplotlib.pyplot.figure().number)
    """)
    assert out.splitlines() == ["[]", "(1, 1) 1"], out
