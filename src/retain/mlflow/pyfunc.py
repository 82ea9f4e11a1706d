"""MLflow-native models: what ``mlflow.pyfunc.load_model`` gives for a registered retain model.

Every model retain logs has two flavours. The ``sklearn`` flavour is the fitted estimator
itself (``mlflow.sklearn.load_model``, what retain's own scoring loads). The ``python_function``
flavour is served by this module: it takes a frame with a feature snapshot's columns (any extra
columns, such as ``customer_id`` and ``as_of``, are fine) and returns named columns:

* churn: ``churn_probability`` (the probability of the class ``1``, from ``predict_proba``:
  any estimator that has it works);
* CLV: ``clv`` (discounted expected net margin over the horizon, the chosen method) and its
  parts where the estimator has ``predict_components`` (``clv_btyd``, ``clv_ml``,
  ``expected_purchases``, ``expected_spend``);
* segments: ``clv`` and the segment labels (``segment``, ``value_tier``, ``loyalty_class``,
  ``lifecycle_stage``, ``cluster``, ...). The CLV model the segments were trained with is
  logged inside the segments model, so a snapshot is enough; a ``clv`` column, when given,
  is used instead.

When the input has a ``customer_id`` column, it comes first in the output. A feature column
missing from the input is named alone (``missing column(s) 'recency_days'``), not among the
whole schema: the signature marks every input optional and this module checks what it needs.

Self-contained models
---------------------
retain is not on PyPI, so ``retain==<version>`` in a model's requirements could not be
installed anywhere. Instead each model carries retain's source (``code/retain``, about 1 MB)
and MLflow puts it on ``sys.path`` when it loads the model; its ``requirements.txt`` pins
retain's runtime dependencies as they were at training. A process without retain installed
can therefore load and use a champion::

    pip install -r requirements.txt   # mlflow.pyfunc.get_model_dependencies(model_uri)
    python -c "import mlflow; m = mlflow.pyfunc.load_model('models:/retain-churn@champion')"

(with ``MLFLOW_TRACKING_URI`` pointing at the workspace's store). Where retain is already
imported, the installed copy is used.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CODE_DIR",
    "OUTPUTS",
    "RetainPyfuncModel",
    "copy_package",
    "model_outputs",
    "save_model",
]

#: Folder of a logged model holding retain's source.
CODE_DIR = "code"
#: Folder of a logged model holding the models a model needs besides its own (``parts/clv``).
PARTS_DIR = "parts"
#: What each kind of model returns.
OUTPUTS = ("churn", "clv", "segments", "prediction")
#: Key of the ``python_function`` flavour naming the output kind.
OUTPUT_KEY = "retain_output"
#: Key of the ``python_function`` flavour listing the input columns the model reads.
COLUMNS_KEY = "retain_columns"
#: Key of the ``python_function`` flavour listing the bundled parts.
PARTS_KEY = "retain_parts"
#: Input columns passed through to the output when present.
ID_COLUMN = "customer_id"
CLV_COLUMN = "clv"
_SHOWN = 10


def model_outputs(
    model: Any,
    output: str,
    frame: pd.DataFrame,
    parts: Mapping[str, Any],
    source: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The named output columns of ``model`` on the feature frame ``frame``.

    Parameters
    ----------
    model : estimator
        The fitted model.
    output : {"churn", "clv", "segments", "prediction"}
        Which kind of model it is.
    frame : pandas.DataFrame
        Feature columns only, in the model's order.
    parts : mapping
        Other fitted models it needs (``{"clv": CLVModel}`` for segments).
    source : pandas.DataFrame, optional
        The whole input the features were taken from (the parts read their own columns from
        it); default ``frame``.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``frame``.
    """
    if output == "churn":
        probability = np.asarray(model.predict_proba(frame))
        classes = list(getattr(model, "classes_", [0, 1]))
        column = classes.index(1) if 1 in classes else probability.shape[1] - 1
        return pd.DataFrame(
            {"churn_probability": probability[:, column].astype(float)}, index=frame.index
        )
    if output == "clv":
        values = pd.DataFrame(
            {"clv": np.asarray(model.predict(frame), dtype=float)}, index=frame.index
        )
        if hasattr(model, "predict_components"):
            components = model.predict_components(frame)
            extra = [name for name in components.columns if name not in values.columns]
            values = values.join(components[extra].set_axis(frame.index))
        return values
    if output == "segments":
        if CLV_COLUMN in frame.columns and frame[CLV_COLUMN].notna().all():
            clv = frame[CLV_COLUMN].astype(float)
        elif "clv" in parts:
            whole = frame if source is None else source
            whole = whole.drop(columns=[CLV_COLUMN], errors="ignore")
            clv = pd.Series(np.asarray(parts["clv"].predict(whole), float), index=frame.index)
        else:
            raise ValueError(
                f"missing column {CLV_COLUMN!r}: this segments model has no CLV model to compute it"
            )
        assigned = model.transform(frame.drop(columns=[CLV_COLUMN], errors="ignore"), clv)
        return pd.concat([clv.rename(CLV_COLUMN), assigned.set_axis(frame.index)], axis=1)
    if output == "prediction":
        predicted = model.predict(frame)
        if isinstance(predicted, pd.DataFrame):
            return predicted.set_axis(frame.index)
        return pd.DataFrame({"prediction": np.asarray(predicted)}, index=frame.index)
    raise ValueError(f"unknown output {output!r}; expected one of {', '.join(OUTPUTS)}")


class RetainPyfuncModel:
    """The ``python_function`` implementation of a retain model (see the module docstring).

    Parameters
    ----------
    model : estimator
        The fitted model.
    output : str
        One of :data:`OUTPUTS`.
    columns : list of str
        Input columns the model reads (its training features; for segments also ``clv``,
        which is optional).
    parts : mapping, optional
        Models it needs besides its own.
    """

    def __init__(
        self,
        model: Any,
        output: str,
        columns: list[str],
        parts: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
        self.output = output
        self.columns = list(columns)
        self.parts = dict(parts or {})

    def _optional(self) -> set[str]:
        return {CLV_COLUMN} if self.output == "segments" else set()

    def predict(self, data: Any, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
        """Named output columns for each row of ``data`` (a snapshot's columns).

        Raises
        ------
        ValueError
            Naming the input columns the model needs that ``data`` lacks (only those).
        """
        frame = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
        optional = self._optional()
        missing = [c for c in self.columns if c not in frame.columns and c not in optional]
        if missing:
            shown = ", ".join(repr(name) for name in missing[:_SHOWN])
            more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
            raise ValueError(
                f"missing column(s) {shown}{more}: the model reads {len(self.columns)} columns "
                "of a retain feature snapshot"
            )
        present = [name for name in self.columns if name in frame.columns]
        result = model_outputs(self.model, self.output, frame[present], self.parts, frame)
        if ID_COLUMN in frame.columns:
            result.insert(0, ID_COLUMN, frame[ID_COLUMN].to_numpy())
        return result


# --------------------------------------------------------------------------- saving


def copy_package(target: str | os.PathLike) -> Path:
    """Copy retain's source (without caches and packaged defaults) to ``target/retain``."""
    import retain

    source = Path(retain.__file__).resolve().parent
    destination = Path(target) / "retain"
    shutil.copytree(
        source,
        destination,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "defaults"),
    )
    return destination


def save_model(
    path: str,
    mlflow_model: Any = None,
    *,
    sk_model: Any,
    output: str,
    columns: list[str],
    parts: Mapping[str, Any] | None = None,
    validate_serving_input: bool = True,
    **sklearn_kwargs: Any,
) -> None:
    """Save ``sk_model`` with the ``sklearn`` flavour and this module's ``python_function``.

    The flavour module :meth:`mlflow.models.Model.log` calls (``flavor=`` this module).

    Parameters
    ----------
    path : str
        Empty folder to save into.
    mlflow_model : mlflow.models.Model
        The model description being built.
    sk_model : estimator
        The fitted model.
    output : str
        One of :data:`OUTPUTS`.
    columns : list of str
        Input columns the model reads.
    parts : mapping, optional
        Other fitted models the output needs, saved under ``parts/<name>``.
    validate_serving_input : bool
        Accepted for :meth:`mlflow.models.Model.log`, which handles it.
    **sklearn_kwargs
        Passed to :func:`mlflow.sklearn.save_model` (signature, example, requirements, ...).
    """
    import mlflow.sklearn
    from mlflow.models import Model

    if output not in OUTPUTS:
        raise ValueError(f"unknown output {output!r}; expected one of {', '.join(OUTPUTS)}")
    mlflow_model = Model() if mlflow_model is None else mlflow_model
    mlflow.sklearn.save_model(sk_model, path, mlflow_model=mlflow_model, **sklearn_kwargs)
    copy_package(Path(path) / CODE_DIR)
    for name, part in (parts or {}).items():
        mlflow.sklearn.save_model(
            part,
            str(Path(path) / PARTS_DIR / name),
            serialization_format=sklearn_kwargs.get("serialization_format"),
            pip_requirements=sklearn_kwargs.get("pip_requirements"),
        )
    flavor = mlflow_model.flavors["python_function"]
    flavor.update(
        {
            "loader_module": __name__,
            "code": CODE_DIR,
            "predict_fn": "predict",
            OUTPUT_KEY: output,
            COLUMNS_KEY: list(columns),
            PARTS_KEY: sorted(parts or {}),
        }
    )
    mlflow_model.save(str(Path(path) / "MLmodel"))


def _load_pyfunc(data_path: str, model_config: Any = None) -> RetainPyfuncModel:
    """Called by ``mlflow.pyfunc.load_model`` with the path of ``model.pkl``."""
    import mlflow.sklearn
    from mlflow.models import Model

    folder = Path(data_path)
    folder = folder.parent if folder.is_file() else folder
    flavor = Model.load(str(folder / "MLmodel")).flavors["python_function"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scikit-learn's version notes
        model = mlflow.sklearn.load_model(str(folder))
        parts = {
            name: mlflow.sklearn.load_model(str(folder / PARTS_DIR / name))
            for name in flavor.get(PARTS_KEY, [])
        }
    return RetainPyfuncModel(model, flavor[OUTPUT_KEY], flavor[COLUMNS_KEY], parts)
