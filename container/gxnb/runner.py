"""Run a notebook user's training code as a batch job (what the run_jupyter_job tool runs).

    python -m gxnb.runner --script SCRIPT --outdir DIR [--data NAME=PATH ...] [--local-path PATH ...]

- Inputs (H5 datasets) appear under the paths the user's code opened locally: each
  --local-path is linked to the --data entry with the same file name (mapping by name,
  the code itself is never rewritten). Without --local-path each input is linked under
  its own name in the working folder. Every link stays inside the working folder: absolute
  paths and paths or names with a '..' part are refused before anything is linked.
- The code (a .py script or the code cells of an .ipynb) runs in an IPython shell, so
  `%magic` and `!shell` lines work as they did in the notebook.
- Afterwards every trained model left in the code's namespace is exported to ONNX with
  its real input signature (Keras 3 models, scikit-learn estimators and pipelines,
  PyTorch modules when torch is in use); NumPy arrays and pandas DataFrames go to
  outputs.h5; the working folder is zipped (workdir.zip).
- Code that raises ends the job with exit status 1 and the traceback on stderr; a `!shell`
  line that fails does too (as `set -e` would), naming the command and its status.
  `sys.exit(0)` / `exit()` end the code early as a success (what it made is exported);
  `sys.exit(N)` ends the job with status N.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import traceback
import warnings
import zipfile
from pathlib import Path, PurePosixPath


class RunnerError(Exception):
    """A problem with the job's inputs, reported as one clear line."""


def log(message: str) -> None:
    print(f"run_jupyter_job: {message}", file=sys.stderr, flush=True)


def prepare_environment(environ=os.environ) -> None:
    """Quiet TensorFlow, plots without a display, and a writable home for an arbitrary job UID."""
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    environ.setdefault("MPLBACKEND", "Agg")
    if not os.access(environ.get("HOME", "/"), os.W_OK):  # an arbitrary job UID: caches need a home
        environ["HOME"] = tempfile.mkdtemp(prefix="gxnb-home-")


# ---------------------------------------------------------------- inputs


def parse_data(entries: list[str]) -> dict[str, Path]:
    """--data NAME=PATH entries as {dataset name: resolved file}; names are checked (see check_data_name)."""
    data = {}
    for entry in entries:
        name, path = split_data_entry(entry)
        check_data_name(name)
        if name in data:
            raise RunnerError(f"--data '{name}' is given twice")
        data[name] = Path(path).resolve()
    check_distinct_file_names(data)
    return data


def split_data_entry(entry: str) -> tuple[str, str]:
    """NAME=PATH, split at the first '=' unless only a later one leaves an existing file (a name with '=')."""
    positions = [i for i, char in enumerate(entry) if char == "="]
    for i in positions:
        if i > 0 and Path(entry[i + 1 :]).is_file():
            return entry[:i], entry[i + 1 :]
    name, sep, path = entry.partition("=")
    if not sep or not name or not path:
        raise RunnerError(f"--data '{entry}': expected NAME=PATH")
    raise RunnerError(f"--data '{name}': file '{path}' does not exist")


def check_data_name(name: str) -> str:
    """An input dataset's name, which gives the file name it is linked under; returns that file name.

    Refused: absolute names, names with a '..' part, names without a file name ('', '.')."""
    pure = PurePosixPath(name)
    if pure.is_absolute():
        raise RunnerError(f"input dataset name '{name}' is an absolute path: a dataset name must be a file name")
    if ".." in pure.parts:
        raise RunnerError(f"input dataset name '{name}' contains '..': it would lead out of the working folder")
    if pure.name in ("", ".") or "\0" in name:
        raise RunnerError(f"input dataset name '{name}' is not a file name")
    return pure.name


def check_distinct_file_names(names) -> None:
    """Inputs are matched by file name: two inputs with the same one would be ambiguous."""
    seen: dict[str, str] = {}
    for name in names:
        file_name = PurePosixPath(name).name
        if file_name in seen:
            raise RunnerError(
                f"input datasets '{seen[file_name]}' and '{name}' have the same file name '{file_name}'; "
                "inputs are matched by file name: rename one of them"
            )
        seen[file_name] = name


def split_local_paths(values: list[str]) -> list[str]:
    """Local paths as the user gave them: repeated options, commas or new lines."""
    return [p.strip() for v in values for p in re.split(r"[,\n]", v) if p.strip()]


def check_local_path(local: str) -> PurePosixPath:
    """A path the user's code opens, as a path relative to the working folder.

    Refused: absolute paths and paths with a '..' part (both would lead out of the working folder)."""
    pure = PurePosixPath(local)
    if pure.is_absolute():
        raise RunnerError(
            f"local path '{local}' is absolute: inputs can only be provided inside the job's working folder; "
            "open the data by a path relative to the notebook (e.g. 'data/train.h5')"
        )
    if ".." in pure.parts:
        raise RunnerError(
            f"local path '{local}' contains '..': inputs can only be provided inside the job's working folder; "
            "keep the data in the notebook's folder or below it"
        )
    return pure


def plan_links(names, local_paths: list[str]) -> list[tuple[str, PurePosixPath, str]]:
    """Where each input goes, without touching any file: [(path in code, path in the working folder, name)].

    Without local paths every input is linked under its file name; otherwise each local path is
    matched to the input with the same file name (or the same name without its extension)."""
    names = list(names)
    file_names = [check_data_name(name) for name in names]
    check_distinct_file_names(names)
    if not local_paths:
        return [(file_name, PurePosixPath(file_name), name) for file_name, name in zip(file_names, names, strict=True)]
    by_file_name: dict[str, str] = {}
    for name in names:
        by_file_name.setdefault(PurePosixPath(name).name, name)
        by_file_name.setdefault(PurePosixPath(name).stem, name)
    plan = []
    for local in local_paths:
        relative = check_local_path(local)
        name = by_file_name.get(relative.name) or by_file_name.get(PurePosixPath(relative.name).stem)
        if name is None:
            raise RunnerError(
                f"local path '{local}' matches no input dataset by name; inputs: {sorted(names) or 'none'}"
            )
        plan.append((local, relative, name))
    return plan


def link_inputs(data: dict[str, Path], local_paths: list[str], workdir: Path) -> dict[str, str]:
    """Make each input available where the code expects it; return {path in code: dataset name}.

    Every path is checked before the first link is made, and no link is made (nor anything
    deleted) outside the working folder."""
    workdir = workdir.resolve()
    plan = plan_links(data, local_paths)
    links = {}
    for local, relative, name in plan:
        try:
            _link(data[name], workdir / relative, workdir)
        except OSError as exc:
            raise RunnerError(f"cannot provide '{local}' in the job's working folder ({exc.strerror})") from exc
        links[local] = name
    return links


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _link(source: Path, target: Path, workdir: Path) -> None:
    # A folder on the way that is a link (made by an earlier input) could lead elsewhere.
    if not _inside(target.parent.resolve(), workdir) or target.resolve() == workdir:
        raise RunnerError(f"'{target.relative_to(workdir)}' would lead out of the working folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_symlink() or target.exists():
        target.unlink()
    target.symlink_to(source)


def load_code(script: Path) -> list[str]:
    """The code to run, as IPython cells."""
    text = script.read_text()
    if script.suffix == ".ipynb" or text.lstrip().startswith("{"):
        try:
            notebook = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RunnerError(f"script '{script.name}' looks like a notebook but is not valid JSON: {exc}") from exc
        cells = [c for c in notebook.get("cells", []) if c.get("cell_type") == "code"]
        return ["".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in cells]
    return [text]


# ---------------------------------------------------------------- execution


def run_code(cells: list[str], namespace_file: str) -> dict:
    """Run the cells in order in one IPython shell; returns the code's namespace.

    Raises CodeFailed (with the job's exit status) when a cell raises, a `!shell` line fails or
    the code calls sys.exit / exit with a non-zero status; with status 0 the rest is skipped."""
    from IPython.core.interactiveshell import InteractiveShell

    class BatchShell(InteractiveShell):
        def enable_gui(self, gui=None):
            """No GUI in a batch job: `%matplotlib inline` and friends are accepted, plots need savefig."""

        def system(self, cmd):
            """A `!cmd` line; in a batch job one that fails stops the code (a notebook only shows it)."""
            super().system(cmd)
            status = self.user_ns.get("_exit_code", 0)
            if status:
                raise ShellCommandFailed(f"shell command {cmd!r} exited with status {status}")

        def showtraceback(self, exc_tuple=None, *args, **kwargs):
            # sys.exit() is how a script ends early, and a failed shell line has printed its own
            # error: neither needs IPython's traceback (run_code reports both in one line).
            if (exc_tuple or sys.exc_info())[0] in (SystemExit, ShellCommandFailed):
                return
            super().showtraceback(exc_tuple, *args, **kwargs)

    shell = BatchShell.instance()
    shell.run_line_magic("colors", "nocolor")  # plain tracebacks in the job's log
    warnings.filterwarnings("ignore", message="To exit: use 'exit'")  # IPython's hint after sys.exit()
    shell.user_ns["__file__"] = namespace_file
    # As in a Python script, exit() / quit() end the code at once, exit(N) with status N.
    shell.user_ns["exit"] = shell.user_ns["quit"] = sys.exit
    for number, cell in enumerate(cells, 1):
        if not cell.strip():
            continue
        result = shell.run_cell(cell, store_history=True)
        error = result.error_before_exec or result.error_in_exec
        if isinstance(error, SystemExit):
            status = exit_status(error.code)
            if status:
                raise CodeFailed(f"cell {number} of the script ended it with sys.exit({error.code!r})", status)
            log(f"cell {number} of the script ended it with sys.exit({error.code!r}): later cells skipped")
            break
        if isinstance(error, ShellCommandFailed):
            raise CodeFailed(f"cell {number} of the script: {error}")
        if error is not None:
            formatted = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            raise CodeFailed(f"cell {number} of the script raised:\n{formatted}")
    return shell.user_ns


def exit_status(code) -> int:
    """The exit status Python gives sys.exit(code): None -> 0, an int as it is, anything else -> 1.

    A status outside 0-255 would wrap around (256 would read as success): it becomes 1."""
    if code is None:
        return 0
    if isinstance(code, int) and not isinstance(code, bool):
        return code if 0 <= code <= 255 else 1
    return 1


class CodeFailed(Exception):
    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class ShellCommandFailed(Exception):
    """A `!shell` line of the code exited with a non-zero status."""


# ---------------------------------------------------------------- outputs


NOT_EXPORTED = {"In", "Out", "exit", "quit", "get_ipython"}


def public_items(namespace: dict):
    """The code's own variables: names that are identifiers, not private, not IPython's."""
    for name, value in namespace.items():
        if not isinstance(name, str) or not name.isidentifier():
            continue
        if name.startswith("_") or name in NOT_EXPORTED:
            continue
        yield name, value


def choose_models(namespace: dict, kind_of=None) -> list[tuple[str, str, object]]:
    """The variables that become ONNX models: [(variable name, kind, model)], kind from kind_of (model_kind)."""
    kind_of = kind_of or model_kind
    chosen = []
    for name, value in public_items(namespace):
        try:
            kind = kind_of(value)
        except Exception as exc:  # a strange object must not stop the export of the others
            log(f"model '{name}' could not be exported to ONNX: {type(exc).__name__}: {exc}")
            continue
        if kind is not None:
            chosen.append((name, kind, value))
    return chosen


def export_models(namespace: dict, outdir: Path, kind_of=None) -> list[str]:
    exported = []
    for name, kind, value in choose_models(namespace, kind_of):
        try:
            path = outdir / f"{name}.onnx"
            EXPORTERS[kind](value, path)
            exported.append(f"{name} ({kind}) -> {path.name}")
        except Exception as exc:  # one model that cannot be converted must not lose the others
            log(f"model '{name}' could not be exported to ONNX: {type(exc).__name__}: {exc}")
    return exported


def model_kind(value) -> str | None:
    """The kind of model (keras, sklearn, torch) or None; only libraries the code imported are looked at."""
    if "keras" in sys.modules:
        import keras

        if isinstance(value, keras.Model):
            return "keras" if value.built else None
    if "sklearn" in sys.modules:
        from sklearn.base import BaseEstimator

        if isinstance(value, BaseEstimator) and not isinstance(value, type):
            from sklearn.exceptions import NotFittedError
            from sklearn.utils.validation import check_is_fitted

            try:
                check_is_fitted(value)
            except (NotFittedError, TypeError):
                return None
            return "sklearn"
    if "torch" in sys.modules:
        import torch

        if isinstance(value, torch.nn.Module):
            return "torch"
    return None


def export_keras(model, path: Path) -> None:
    model.export(str(path), format="onnx")


def export_sklearn(estimator, path: Path) -> None:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    n_features = getattr(estimator, "n_features_in_", None)
    if n_features is None:
        raise RunnerError("the estimator does not record its number of input features (n_features_in_)")
    options = None
    from sklearn.base import is_classifier

    if is_classifier(estimator):
        options = {id(estimator): {"zipmap": False}}  # plain probability arrays
    onx = to_onnx(estimator, initial_types=[("input", FloatTensorType([None, int(n_features)]))], options=options)
    path.write_bytes(onx.SerializeToString())


def export_torch(module, path: Path) -> None:
    import torch

    first = next((m for m in module.modules() if isinstance(m, torch.nn.Linear)), None)
    if first is None:
        raise RunnerError("the module's input shape is unknown (no Linear layer to read it from)")
    # Export from the CPU: a model trained on a GPU would otherwise need its example input
    # on that device, and the ONNX file must not depend on where training ran.
    module = module.to("cpu").eval()
    example = torch.zeros(1, first.in_features, dtype=first.weight.dtype)
    torch.onnx.export(module, (example,), str(path), input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})  # fmt: skip


EXPORTERS = {"keras": export_keras, "sklearn": export_sklearn, "torch": export_torch}


def choose_arrays(namespace: dict) -> list[tuple[str, str, object]]:
    """The variables that go to outputs.h5: [(name, "array" | "dataframe", value)].

    NumPy arrays and pandas DataFrames; whether an array can be stored is h5_ready's call."""
    numpy = sys.modules.get("numpy")  # an array in the namespace means NumPy is imported
    pandas = sys.modules.get("pandas")
    chosen = []
    for name, value in public_items(namespace):
        if numpy is not None and isinstance(value, numpy.ndarray):
            chosen.append((name, "array", value))
        elif pandas is not None and isinstance(value, pandas.DataFrame):
            chosen.append((name, "dataframe", value))
    return chosen


def h5_ready(array):
    """(data, attributes) that HDF5 can store for a NumPy array, or None when it cannot be stored.

    Numbers, booleans and bytes as they are; text as UTF-8 bytes; datetimes as ISO 8601 text;
    timedeltas as int64 counts. Converted arrays record their NumPy dtype in the attribute
    "numpy_dtype". Object arrays: None."""
    import numpy as np

    kind = array.dtype.kind
    if kind in "biufcSV":
        return array, {}
    attrs = {"numpy_dtype": str(array.dtype)}
    if kind in "UT":  # T: NumPy 2's StringDType
        return _utf8(np.asarray(array, dtype=str)), attrs
    if kind == "M":
        return _utf8(np.datetime_as_string(array)), attrs
    if kind == "m":
        return array.astype("int64"), attrs
    return None


def _utf8(text_array):
    import numpy as np

    return np.char.encode(text_array, "utf-8")  # fixed-length bytes, as h5py stores NumPy text


def dataframe_columns(frame) -> list[tuple[str, object, dict]]:
    """A DataFrame's columns as [(dataset name, data, attributes)] for its group in outputs.h5."""
    columns = []
    for i, column in enumerate(frame.columns):
        name = f"{i:04d}_{column}".replace("/", "_")  # a '/' would make HDF5 subgroups
        series = frame.iloc[:, i]
        data = series.to_numpy()
        if data.dtype == object or str(series.dtype) in ("string", "str"):
            columns.append((name, _utf8(series.astype(str).to_numpy().astype(str)), {}))
            continue
        ready = h5_ready(data)
        if ready is None:
            raise RunnerError(f"column '{column}' cannot be stored in HDF5 (dtype {series.dtype})")
        columns.append((name, *ready))
    return columns


def save_arrays(namespace: dict, path: Path) -> list[str]:
    """Write the chosen arrays and DataFrames to path; one that cannot be written is reported and skipped."""
    import h5py

    saved = []
    with h5py.File(path, "w") as h5:
        for name, kind, value in choose_arrays(namespace):
            try:
                if kind == "array":
                    ready = h5_ready(value)
                    if ready is None:
                        log(f"array '{name}' not saved to outputs.h5: HDF5 cannot store {value.dtype} arrays")
                        continue
                    _write(h5, name, *ready)
                else:
                    group = h5.create_group(name)
                    group.attrs["columns"] = [str(c) for c in value.columns]
                    for dataset_name, data, attrs in dataframe_columns(value):
                        _write(group, dataset_name, data, attrs, compress=False)
                saved.append(name)
            except Exception as exc:  # one variable that cannot be written must not lose the others
                if name in h5:
                    del h5[name]
                log(f"'{name}' could not be saved to outputs.h5: {type(exc).__name__}: {exc}")
    return saved


def _write(group, name: str, data, attrs: dict, compress: bool = True) -> None:
    options = {"compression": "gzip"} if compress and data.ndim and data.size else {}  # scalars: no filters
    dataset = group.create_dataset(name, data=data, **options)
    for key, value in attrs.items():
        dataset.attrs[key] = value


def zip_folder(folder: Path, archive: Path) -> int:
    """Zip what the code wrote; inputs (links to the datasets) stay out."""
    count = 0
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink() and path.resolve() != archive.resolve():
                zf.write(path, path.relative_to(folder))
                count += 1
    return count


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    prepare_environment()
    parser = argparse.ArgumentParser(prog="python -m gxnb.runner", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--script", required=True, type=Path, help="the .py script or .ipynb notebook to run")
    parser.add_argument("--outdir", required=True, type=Path, help="where ONNX models, outputs.h5, workdir.zip go")
    parser.add_argument("--workdir", type=Path, default=Path("work"), help="where the code runs (default ./work)")
    parser.add_argument("--data", action="append", default=[], metavar="NAME=PATH", help="an input dataset")
    parser.add_argument("--local-path", action="append", default=[], help="a path the code opens (repeatable)")
    args = parser.parse_args(argv)
    try:
        if not args.script.is_file():
            raise RunnerError(f"--script '{args.script}' does not exist")
        data = parse_data(args.data)
        args.outdir.mkdir(parents=True, exist_ok=True)
        workdir = args.workdir.resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        links = link_inputs(data, split_local_paths(args.local_path), workdir)
        for local, name in links.items():
            log(f"input '{name}' available as '{local}'")
        cells = load_code(args.script)
    except RunnerError as exc:
        log(f"error: {exc}")
        return 2
    outdir = args.outdir.resolve()
    os.chdir(workdir)
    log(f"running {args.script.name} ({len(cells)} cell(s)) in {workdir}")
    try:
        namespace = run_code(cells, str(workdir / args.script.name))
    except CodeFailed as exc:
        log(str(exc))
        return exc.status
    for line in export_models(namespace, outdir):
        log(f"exported {line}")
    arrays = save_arrays(namespace, outdir / "outputs.h5")
    log(f"saved {len(arrays)} array(s)/DataFrame(s) to outputs.h5: {', '.join(arrays) or '-'}")
    log(f"zipped {zip_folder(workdir, outdir / 'workdir.zip')} file(s) of the working folder to workdir.zip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
