"""Inference handlers of the benchmark's real model: a RandomForest on iris, CSV rows in, classes
out as CSV (one per line)."""

import os

import joblib
import numpy as np


def model_fn(model_dir):
    model = joblib.load(os.path.join(model_dir, "model.joblib"))
    model.n_jobs = 1  # one request is one row: a thread pool per predict would only cost
    return model


def input_fn(input_data, content_type):
    text = input_data.decode() if isinstance(input_data, bytes) else input_data
    rows = [[float(value) for value in line.split(",")] for line in text.splitlines() if line]
    return np.array(rows, dtype=np.float64)


def predict_fn(data, model):
    return model.predict(data)


def output_fn(prediction, accept):
    return "".join(f"{int(label)}\n" for label in prediction), "text/csv"
