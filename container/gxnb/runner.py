"""Run a notebook user's training code as a batch job (what the run_jupyter_job tool runs).

    python -m gxnb.runner --script SCRIPT --outdir DIR [--data NAME=PATH ...] [--local-path PATH ...]

- Inputs (H5 datasets) appear under the paths the user's code opened locally: each
  --local-path is linked to the --data entry with the same file name (mapping by name,
  the code itself is never rewritten). Without --local-path each input is linked under
  its own name in the working folder.
- The code (a .py script or the code cells of an .ipynb) runs in an IPython shell, so
  `%magic` and `!shell` lines work as they did in the notebook.
- Afterwards every trained model left in the code's namespace is exported to ONNX with
  its real input signature (Keras 3 models, scikit-learn estimators and pipelines,
  PyTorch modules when torch is in use); NumPy arrays and pandas DataFrames go to
  outputs.h5; the working folder is zipped (workdir.zip).
- Code that raises ends the job with exit status 1 and the traceback on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import traceback
import zipfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MPLBACKEND", "Agg")
if not os.access(os.environ.get("HOME", "/"), os.W_OK):  # an arbitrary job UID: caches need a home
    os.environ["HOME"] = tempfile.mkdtemp(prefix="gxnb-home-")


class RunnerError(Exception):
    """A problem with the job's inputs, reported as one clear line."""


def log(message: str) -> None:
    print(f"run_jupyter_job: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- inputs


def parse_data(entries: list[str]) -> dict[str, Path]:
    data = {}
    for entry in entries:
        name, sep, path = entry.partition("=")
        if not sep or not name or not path:
            raise RunnerError(f"--data '{entry}': expected NAME=PATH")
        if not Path(path).is_file():
            raise RunnerError(f"--data '{name}': file '{path}' does not exist")
        data[name] = Path(path).resolve()
    return data


def split_local_paths(values: list[str]) -> list[str]:
    """Local paths as the user gave them: repeated options, commas or new lines."""
    return [p.strip() for v in values for p in re.split(r"[,\n]", v) if p.strip()]


def link_inputs(data: dict[str, Path], local_paths: list[str], workdir: Path) -> dict[str, str]:
    """Make each input available where the code expects it; return {path in code: dataset name}."""
    links = {}
    if not local_paths:
        for name, source in data.items():
            _link(source, workdir / Path(name).name)
            links[Path(name).name] = name
        return links
    by_file_name = {}
    for name in data:
        by_file_name.setdefault(Path(name).name, name)
        by_file_name.setdefault(Path(name).stem, name)
    for local in local_paths:
        file_name = Path(local).name
        name = by_file_name.get(file_name) or by_file_name.get(Path(file_name).stem)
        if name is None:
            raise RunnerError(
                f"local path '{local}' matches no input dataset by name; inputs: {sorted(data) or 'none'}"
            )
        target = Path(local) if Path(local).is_absolute() else workdir / local
        try:
            _link(data[name], target)
        except OSError as exc:
            raise RunnerError(f"cannot provide '{local}' in the job ({exc.strerror}): use a relative path") from exc
        links[local] = name
    return links


def _link(source: Path, target: Path) -> None:
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
    from IPython.core.interactiveshell import InteractiveShell

    class BatchShell(InteractiveShell):
        def enable_gui(self, gui=None):
            """No GUI in a batch job: `%matplotlib inline` and friends are accepted, plots need savefig."""

    shell = BatchShell.instance()
    shell.run_line_magic("colors", "nocolor")  # plain tracebacks in the job's log
    shell.user_ns["__file__"] = namespace_file
    for number, cell in enumerate(cells, 1):
        if not cell.strip():
            continue
        result = shell.run_cell(cell, store_history=True)
        error = result.error_before_exec or result.error_in_exec
        if error is not None:
            formatted = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            raise CodeFailed(f"cell {number} of the script raised:\n{formatted}")
    return shell.user_ns


class CodeFailed(Exception):
    pass


# ---------------------------------------------------------------- outputs


def public_items(namespace: dict):
    for name, value in namespace.items():
        if name.startswith("_") or name in {"In", "Out", "exit", "quit", "get_ipython"}:
            continue
        yield name, value


def export_models(namespace: dict, outdir: Path) -> list[str]:
    exported = []
    for name, value in public_items(namespace):
        try:
            kind = model_kind(value)
            if kind is None:
                continue
            path = outdir / f"{name}.onnx"
            {"keras": export_keras, "sklearn": export_sklearn, "torch": export_torch}[kind](value, path)
            exported.append(f"{name} ({kind}) -> {path.name}")
        except Exception as exc:  # one model that cannot be converted must not lose the others
            log(f"model '{name}' could not be exported to ONNX: {type(exc).__name__}: {exc}")
    return exported


def model_kind(value) -> str | None:
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


def save_arrays(namespace: dict, path: Path) -> list[str]:
    import h5py
    import numpy as np

    pandas = sys.modules.get("pandas")
    saved = []
    with h5py.File(path, "w") as h5:
        for name, value in public_items(namespace):
            if isinstance(value, np.ndarray) and value.dtype != object:
                h5.create_dataset(name, data=value, compression="gzip")
                saved.append(name)
            elif pandas is not None and isinstance(value, pandas.DataFrame):
                group = h5.create_group(name)
                group.attrs["columns"] = [str(c) for c in value.columns]
                for i, column in enumerate(value.columns):
                    series = value[column]
                    data = series.to_numpy()
                    if data.dtype == object or str(series.dtype) in ("string", "str"):
                        data = series.astype(str).to_numpy().astype("S")
                    group.create_dataset(f"{i:04d}_{column}", data=data)
                saved.append(name)
    return saved


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
    parser = argparse.ArgumentParser(prog="python -m gxnb.runner", description=__doc__.split("\n\n")[0])
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
        return 1
    for line in export_models(namespace, outdir):
        log(f"exported {line}")
    arrays = save_arrays(namespace, outdir / "outputs.h5")
    log(f"saved {len(arrays)} array(s)/DataFrame(s) to outputs.h5: {', '.join(arrays) or '-'}")
    log(f"zipped {zip_folder(workdir, outdir / 'workdir.zip')} file(s) of the working folder to workdir.zip")
    return 0


if __name__ == "__main__":
    sys.exit(main())
