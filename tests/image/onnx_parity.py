"""Runs inside the notebook image: Keras and scikit-learn models exported to ONNX
must predict what the originals predict. Prints one JSON line of max differences."""

import json
import os
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from skl2onnx import to_onnx  # noqa: E402
from sklearn.ensemble import RandomForestRegressor  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

rng = np.random.default_rng(7)
features = rng.normal(size=(256, 7)).astype(np.float32)
target = (features @ rng.normal(size=7) + 0.1 * rng.normal(size=256)).astype(np.float32)
labels = (target > 0).astype(np.int64)
result = {}

# Keras 3: a small regression network, exported through Keras' own ONNX export.
keras.utils.set_random_seed(7)
model = keras.Sequential([keras.Input(shape=(7,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(features, target, epochs=3, batch_size=32, verbose=0)
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "keras.onnx")
    model.export(path, format="onnx")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    onnx_out = session.run(None, {session.get_inputs()[0].name: features})[0]
result["keras_max_abs_diff"] = float(np.max(np.abs(onnx_out - model.predict(features, verbose=0))))

# scikit-learn: a pipeline (scaler + forest) and a classifier's probabilities.
regressor = make_pipeline(StandardScaler(), RandomForestRegressor(n_estimators=20, random_state=7))
regressor.fit(features, target)
session = ort.InferenceSession(to_onnx(regressor, features[:1]).SerializeToString(), providers=["CPUExecutionProvider"])
onnx_out = session.run(None, {session.get_inputs()[0].name: features})[0].ravel()
result["sklearn_regressor_max_abs_diff"] = float(np.max(np.abs(onnx_out - regressor.predict(features))))

classifier = make_pipeline(StandardScaler(), LogisticRegression()).fit(features, labels)
onx = to_onnx(classifier, features[:1], options={id(classifier): {"zipmap": False}})
session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
onnx_labels, onnx_proba = session.run(None, {session.get_inputs()[0].name: features})
result["sklearn_classifier_max_abs_diff"] = float(np.max(np.abs(onnx_proba - classifier.predict_proba(features))))
result["sklearn_classifier_label_mismatches"] = int(np.sum(onnx_labels != classifier.predict(features)))
print(json.dumps(result))
