"""Pick the Keras backend before Keras is imported: the one measured fastest for the model.

The dense networks train fastest on JAX with digitlab's compiled loop (digitlab.training.jaxloop).
The CNNs depend on the CPU (`convnet_backend`): TensorFlow's `fit` wins where TensorFlow runs its
oneDNN kernels, the loop wins where it runs Eigen's. `cnn-aug`, whose batch norm the loop runs
through Keras' own layer code, is no slower on TensorFlow, so it names TensorFlow. BENCHMARKS.md has
the measurements behind each choice. Each preset names its backend (or the CNNs' rule); `KERAS_BACKEND` set by the
user always wins, and once Keras is imported in a process its backend is fixed. On JAX, XLA's
compiled programs are kept in the cache folder (`use_compilation_cache`), so a second run of a
recipe neither recompiles its loop nor its model.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import os
import platform
import sys
from collections.abc import Callable
from pathlib import Path


from digitlab.data.fetch import default_cache_dir
from digitlab.threads import in_thread

BACKENDS = ("jax", "tensorflow", "torch")
DEFAULT_BACKEND = "jax"
CONVNET = "convnet"  # a preset's backend rule: whichever trains convolutions fastest on this CPU
# The CPU features for which TensorFlow's Linux x86 builds turn their oneDNN kernels on by default
# (TensorFlow 2.9 and later; `IsMKLEnabled` in tensorflow/core/util/util.cc), as /proc/cpuinfo names them.
ONEDNN_CPU_FLAGS = frozenset({"avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16"})


def select_backend_meanwhile(preferred: str | None = None) -> Callable[[], str]:
    """`select_backend(preferred)` in a thread; returns the function that waits for it (and raises
    what it raised). Keras' import (1.5-2 s) keeps one core busy and leaves the other idle, while
    reading a data set (gzip and SHA-256, which release the GIL) is the next thing a training
    does: the two overlap. Nothing else may touch Keras until the wait returns."""
    return in_thread(lambda: select_backend(preferred), "digitlab-import-keras")


@contextlib.contextmanager
def stderr_muted():
    """File descriptor 2 sent to /dev/null meanwhile: native code (TensorFlow's, XLA's) writes
    there, not to sys.stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def select_backend(preferred: str | None = None) -> str:
    """Import Keras on `preferred` unless the user set KERAS_BACKEND or Keras is already imported.

    Returns the backend that Keras uses in this process. The environment is left as it was, so
    child processes (such as `digitlab reproduce`'s) choose their own backend again.
    """
    if "keras" not in sys.modules:
        user_choice = bool(os.environ.get("KERAS_BACKEND"))
        if not user_choice:
            os.environ["KERAS_BACKEND"] = planned_backend(preferred)
        try:
            if os.environ["KERAS_BACKEND"] == "tensorflow":
                _import_tensorflow_quietly()  # TensorFlow's import may import Keras: env set first
            with hidden_while_importing(KERAS_NEEDLESS_IMPORTS):
                import keras  # noqa: F401
        finally:
            if not user_choice:
                del os.environ["KERAS_BACKEND"]
    backend = sys.modules["keras"].backend.backend()
    if backend != "tensorflow":
        keep_tensorflow_unloaded()
    if backend == "jax":  # also when Keras was imported before digitlab (a no-op once the cache is set)
        use_compilation_cache(default_cache_dir() / "compiled")
    return backend


# What `import keras` imports only for features digitlab does not use, and does without when they are
# missing: scikit-learn for `keras.wrappers` (about 1.5 s, scipy.stats included); matplotlib for
# `keras.visualization`'s galleries (0.23 s, 0.7 s with pyplot; a run's figures are drawn by its
# helper processes, and matplotlib imports as usual wherever digitlab draws); pandas, which Keras'
# data adapters import to accept DataFrames (0.34 s; digitlab hands Keras NumPy arrays). Without the
# last two, Keras with JAX imported in 1.4 s instead of 1.9 s (2026-12-06). In a process where
# digitlab imported Keras, Keras' own fit does not take DataFrames.
KERAS_NEEDLESS_IMPORTS = ("sklearn", "matplotlib", "pandas")


@contextlib.contextmanager
def hidden_while_importing(names):
    """Make `import name` fail inside the block for each name not yet imported; after it, they
    import as usual (Keras' wrappers and image gallery, made while they were hidden, stay without)."""
    hidden = [n for n in names if n not in sys.modules]
    for n in hidden:
        sys.modules[n] = None  # the import system's "not available" marker
    try:
        yield
    finally:
        for n in hidden:
            if sys.modules.get(n, 0) is None:
                del sys.modules[n]


def convnet_backend(flags: frozenset[str] | None = None, environ=os.environ) -> str:
    """The backend that trains the convolutional presets fastest on this CPU.

    TensorFlow where it runs its oneDNN kernels on a CPU made for them (AVX-512 VNNI or BF16,
    AVX-VNNI or AMX); JAX with digitlab's compiled loop everywhere else, where the loop is faster and
    forcing oneDNN on gains TensorFlow nothing (BENCHMARKS.md, "Backends"). Decided without importing TensorFlow (several seconds): `flags` are this
    CPU's (`cpu_flags()`); TF_ENABLE_ONEDNN_OPTS=0, TensorFlow's own switch, turns it off.
    """
    flags = cpu_flags() if flags is None else flags
    return "tensorflow" if ONEDNN_CPU_FLAGS & flags and tensorflow_uses_onednn(flags, environ) else "jax"


def bfloat16_is_fast(flags: frozenset[str] | None = None, environ=os.environ) -> bool:
    """Whether TensorFlow computes in bfloat16 faster than in float32 here: with oneDNN's kernels on a
    CPU with bfloat16 instructions (AVX-512 BF16 or AMX BF16), as measured on an AVX-512 EPYC. A CPU
    without them has to convert every bfloat16 number to float32 and back (not measured here)."""
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_bf16", "amx_bf16"} & flags) and tensorflow_uses_onednn(flags, environ)


def planned_backend(preferred: str | None = None) -> str:
    """The backend `select_backend(preferred)` gives this process, without importing Keras."""
    keras = sys.modules.get("keras")
    if keras is not None:
        return keras.backend.backend()
    return os.environ.get("KERAS_BACKEND") or preferred or DEFAULT_BACKEND


def tensorflow_uses_onednn(flags: frozenset[str] | None = None, environ=os.environ) -> bool:
    """Whether TensorFlow, once imported, runs its oneDNN kernels on this Linux x86-64 CPU.

    TensorFlow's own answer (`_pywrap_util_port.IsMklEnabled`) needs TensorFlow imported; this is
    its rule for Linux x86-64 (`tests/unit/test_backend.py` holds the two together on the test
    machine): TF_ENABLE_ONEDNN_OPTS, read as TensorFlow reads it, else the CPU's features. Other
    systems get False: TensorFlow's rules there differ, and digitlab measured none of them. The
    flags are the kernel's names (/proc/cpuinfo); a kernel too old to know AVX-VNNI or AMX hides
    them, where TensorFlow asks the CPU itself.
    """
    if platform.system() != "Linux" or platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    setting = environ.get("TF_ENABLE_ONEDNN_OPTS", "").lower()  # TensorFlow lowercases, does not strip
    if setting in ("0", "false"):
        return False
    if setting in ("1", "true"):
        return True
    return bool(ONEDNN_CPU_FLAGS & (cpu_flags() if flags is None else flags))


def cpu_flags() -> frozenset[str]:
    """This CPU's instruction-set flags as /proc/cpuinfo lists them; empty where there is no such file."""
    lines = _cpuinfo_lines(("flags",))
    return frozenset(lines[0].partition(":")[2].split()) if lines else frozenset()


@functools.cache
def _cpuinfo_lines(keys: tuple[str, ...]) -> list[str]:
    """The distinct lines of /proc/cpuinfo that start with one of `keys`, sorted; [] without the file.
    Read once per process: a preset's backend is asked for several times in a run."""
    try:
        with open("/proc/cpuinfo") as f:
            return sorted({line for line in f if line.startswith(keys)})
    except OSError:
        return []


def keep_tensorflow_unloaded() -> bool:
    """Stop Keras from importing TensorFlow in a process whose backend is another one.

    Keras asks "is TensorFlow installed?" by importing it, in two places that cannot need it unless
    TensorFlow is already loaded: saving a model (`isinstance(obj, tf.TensorShape)` in
    `serialization_lib`) and `set_random_seed` (which also seeds TensorFlow's generator). That import
    costs seconds and hundreds of MB, more than the MLP's whole training on JAX (BENCHMARKS.md). Keras offers no setting for it, so those two modules
    get their own lazy `tensorflow` module that answers "available" only once TensorFlow is loaded.
    Keras' shared lazy module is left alone: the layers that need TensorFlow (`StringLookup`,
    `Hashing`, ...) still import it. If TensorFlow is imported later in the process, seeds set
    before then did not reach it, and its start-up notices are not silenced.
    Returns False, changing nothing, where this Keras lacks those names (another Keras version):
    TensorFlow is then imported as before, only slower.
    """
    try:
        from keras.src.saving import serialization_lib
        from keras.src.utils import module_utils, rng_utils
    except ImportError:
        return False
    base = getattr(module_utils, "LazyModule", None)
    if base is None:
        return False
    patched = False
    for module in (serialization_lib, rng_utils):
        lazy = getattr(module, "tf", None)
        if isinstance(lazy, _WhenLoaded):
            patched = True
        elif isinstance(lazy, base) and getattr(lazy, "name", None) == "tensorflow":
            module.tf = type("WhenLoaded" + type(lazy).__name__, (_WhenLoaded, type(lazy)), {})("tensorflow")
            patched = True
    return patched


class _WhenLoaded:
    """Mixed into Keras' LazyModule for TensorFlow: available only once something imported it."""

    @property
    def available(self) -> bool:
        return "tensorflow" in sys.modules and super().available


def _import_tensorflow_quietly() -> None:
    """Import TensorFlow (if installed) with its C++ start-up chatter sent to /dev/null.

    On the TensorFlow backend only (other backends keep it unloaded: `keep_tensorflow_unloaded`).
    TensorFlow's native code prints oneDNN and CUDA notices to stderr on import that no environment
    variable silences; they would bury digitlab's own messages.
    """
    if "tensorflow" in sys.modules or importlib.util.find_spec("tensorflow") is None:
        return
    # 3, not 2: on a machine without a GPU, TensorFlow's first operation logs "failed call to cuInit"
    # at error level, after the import; a real failure still raises a Python exception.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    with stderr_muted():
        import tensorflow  # noqa: F401


def use_compilation_cache(folder: Path) -> bool:
    """Keep XLA's compiled programs in `folder`, so that the next run of the same recipe skips compiling.

    Compiling digitlab's training loop takes seconds, and Keras compiles every variable's initializer
    too; a cached program loads in milliseconds. JAX's own persistent cache, keyed by the
    program, the JAX version and the CPU, at most 1 GB (least recently used programs go first).
    Skipped, returning False, where the folder cannot be written or JAX already has a cache folder
    (the user's own setting wins).
    """
    import jax

    if jax.config.jax_compilation_cache_dir:
        return False
    # A program compiled for one CPU may use instructions another lacks (a cache folder in a home
    # directory shared by several machines): one subfolder per CPU feature set and JAX version.
    folder = folder / f"{platform.machine()}-{_cpu_features_digest()}-jax{jax.__version__}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    if not os.access(folder, os.W_OK):
        return False
    mend_compiled_cache(folder)
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_compilation_cache_max_size", 2**30)
    return True


def mend_compiled_cache(folder: Path) -> int:
    """Remove the half-written entries of JAX's compilation cache in `folder`; returns how many.

    JAX writes an entry as two files, the program (`<key>-cache`) and then its last-use time
    (`<key>-atime`). A process killed between the two (Ctrl-C, or a benchmark that stops a run once
    it reaches its accuracy) leaves a program without a time, possibly truncated, and from then on
    JAX's least-recently-used eviction fails on every new entry: the cache silently stops growing
    and each compilation prints a FileNotFoundError warning (seen here). An orphan is removed under
    JAX's own lock of the folder, so an entry another process is writing right now is left alone.
    (A JAX process with no size limit writes no use times; digitlab always sets one in its folder.)
    """
    removed = 0
    try:
        import filelock  # only a training run compiles

        with filelock.FileLock(folder / ".lockfile", timeout=10):
            names = {p.name for p in folder.iterdir()}
            for name in names:
                for suffix, partner in (("-cache", "-atime"), ("-atime", "-cache")):
                    if name.endswith(suffix) and name[: -len(suffix)] + partner not in names:
                        (folder / name).unlink(missing_ok=True)
                        removed += 1
    except OSError:  # a busy (filelock.Timeout) or unreadable folder: JAX copes or skips
        pass
    return removed


def _cpu_features_digest() -> str:
    """A short digest of this CPU's model and instruction-set flags (Linux); of its name elsewhere."""
    text = "".join(_cpuinfo_lines(("flags", "model name", "Features"))) or platform.processor()
    return hashlib.sha256(text.encode()).hexdigest()[:12]
