"""A SageMaker bring-your-own-container program in plain Python: `program.py train` or `serve`.

It trains a nearest-centroid classifier on CSV data and serves it over HTTP. Standard library only,
so it runs on any python3 >= 3.10: in SageMaker, in dockyard, or in a bare `python:3.11-slim` image.

train: reads /opt/ml/input/config/{hyperparameters,inputdataconfig,resourceconfig}.json and the CSV
files of every channel (File mode: the files under /opt/ml/input/data/<channel>/; Pipe mode: the
FIFO /opt/ml/input/data/<channel>_0, read to EOF). A channel named `validation` is scored, the
others are trained on. Writes /opt/ml/model/model.json and /opt/ml/output/data/metrics.json; on
an error writes /opt/ml/output/failure and exits 1; on SIGTERM saves what it has and exits 0.

serve: listens on 0.0.0.0:8080 (or SAGEMAKER_BIND_TO_PORT): GET /ping, POST /invocations with
text/csv rows or application/json {"instances": [[...], ...]}.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import signal
import sys
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ML = Path("/opt/ml")
CONFIG = ML / "input" / "config"
DATA = ML / "input" / "data"
MODEL_FILE = ML / "model" / "model.json"
OUTPUT = ML / "output"
MAX_BODY_BYTES = 6 * 1024 * 1024  # SageMaker's InvokeEndpoint payload limit


class Stopped(BaseException):
    """Raised from the SIGTERM handler: the platform is stopping the job.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way swallows it.
    """


class UserError(Exception):
    """A problem with the job's inputs, reported without a traceback."""


# ---------------------------------------------------------------------------------------------
# training


def read_json(path: Path, default: object) -> object:
    if not path.exists():
        return default
    with path.open() as f:
        return json.load(f)


def int_hyperparameter(hyperparameters: dict, name: str, default: int, minimum: int) -> int:
    raw = hyperparameters.get(name)
    if raw is None:
        return default
    try:
        value = int(str(raw).strip().strip('"'))
    except ValueError:
        raise UserError(f"hyperparameter {name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise UserError(f"hyperparameter {name} must be at least {minimum}, got {value}")
    return value


def float_hyperparameter(hyperparameters: dict, name: str, default: float) -> float:
    raw = hyperparameters.get(name)
    if raw is None:
        return default
    try:
        value = float(str(raw).strip().strip('"'))
    except ValueError:
        raise UserError(f"hyperparameter {name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value < 0:
        raise UserError(f"hyperparameter {name} must be a finite number >= 0, got {raw!r}")
    return value


def channel_texts(channel: str, mode: str) -> list[tuple[str, str]]:
    """The CSV documents of one channel as (source name, text) pairs."""
    if mode == "Pipe":
        fifo = DATA / f"{channel}_0"
        deadline = time.monotonic() + 60
        while not fifo.exists():  # the platform may create the epoch's pipe after we start
            if time.monotonic() > deadline:
                raise UserError(f"Pipe-mode channel {channel}: {fifo} did not appear within 60 s")
            time.sleep(0.05)
        with fifo.open(encoding="utf-8", newline="") as f:
            return [(fifo.name, f.read())]
    folder = DATA / channel
    if not folder.is_dir():
        raise UserError(f"channel {channel} has no data folder {folder}")
    files = sorted(p for p in folder.rglob("*.csv") if p.is_file())
    return [(str(p.relative_to(folder)), p.read_text(encoding="utf-8")) for p in files]


def parse_rows(texts: list[tuple[str, str]], channel: str) -> tuple[list[str], list[list[str]]]:
    """Header and data rows of CSV documents that share one header.

    A Pipe-mode channel concatenates its S3 objects, so a header can repeat inside one document:
    any later line equal to the first header is skipped.
    """
    header: list[str] | None = None
    rows: list[list[str]] = []
    for source, text in texts:
        count = 0
        for row in csv.reader(io.StringIO(text)):
            if not row or all(not cell.strip() for cell in row):
                continue
            row = [cell.strip() for cell in row]
            if header is None:
                header = row
                continue
            if row == header:
                continue
            if len(row) != len(header):
                raise UserError(
                    f"channel {channel}, {source}: a row has {len(row)} values but the header "
                    f"{','.join(header)} has {len(header)}"
                )
            rows.append(row)
            count += 1
        print(f"read {count} rows from {channel}/{source}", flush=True)
    if header is None:
        raise UserError(f"channel {channel} has no CSV data (expected *.csv files with a header)")
    return header, rows


def split_features(
    header: list[str], rows: list[list[str]], target: str, channel: str
) -> tuple[list[str], list[list[float]], list[str]]:
    if target not in header:
        raise UserError(
            f"target column '{target}' is not in channel {channel}; "
            f"the columns are: {', '.join(header)}"
        )
    index = header.index(target)
    features = [name for i, name in enumerate(header) if i != index]
    if not features:
        raise UserError(f"channel {channel} has no feature columns besides the target")
    xs: list[list[float]] = []
    ys: list[str] = []
    for number, row in enumerate(rows, start=1):
        try:
            xs.append([float(v) for i, v in enumerate(row) if i != index])
        except ValueError:
            raise UserError(
                f"channel {channel}, data row {number}: feature values must be numbers, got {row}"
            ) from None
        ys.append(row[index])
    return features, xs, ys


class NearestCentroid:
    """Each class is represented by one point; a row gets the class of the nearest point."""

    def __init__(self, features: list[str], centroids: dict[str, list[float]]) -> None:
        self.features = features
        self.centroids = centroids

    def predict_one(self, x: list[float]) -> str:
        return min(self.centroids, key=lambda c: squared_distance(x, self.centroids[c]))

    def to_json(self) -> dict:
        return {"kind": "nearest-centroid", "features": self.features, "centroids": self.centroids}

    @classmethod
    def from_json(cls, data: dict) -> NearestCentroid:
        centroids = {str(k): [float(v) for v in point] for k, point in data["centroids"].items()}
        if not centroids:
            raise ValueError("the model has no classes")
        return cls([str(f) for f in data["features"]], centroids)


def mean_point(points: list[list[float]]) -> list[float]:
    return [sum(column) / len(points) for column in zip(*points, strict=True)]


def squared_distance(a: list[float], b: list[float]) -> float:
    return sum((p - q) ** 2 for p, q in zip(a, b, strict=True))


def accuracy(model: NearestCentroid, xs: list[list[float]], ys: list[str]) -> float:
    hits = sum(model.predict_one(x) == y for x, y in zip(xs, ys, strict=True))
    return hits / len(ys) if ys else 0.0


class Trainer:
    """Holds what training has produced so far, so a SIGTERM can save it."""

    def __init__(self) -> None:
        self.model: NearestCentroid | None = None
        self.target = "Species"
        self.epochs_completed = 0
        self.metrics: dict[str, float] = {}

    def run(self) -> None:
        hyperparameters = read_json(CONFIG / "hyperparameters.json", {})
        inputdataconfig = read_json(CONFIG / "inputdataconfig.json", None)
        resourceconfig = read_json(CONFIG / "resourceconfig.json", {})
        if not isinstance(hyperparameters, dict):
            raise UserError("hyperparameters.json must hold a JSON object")
        if not isinstance(resourceconfig, dict):
            raise UserError("resourceconfig.json must hold a JSON object")
        if inputdataconfig is None:  # not written: fall back to the channel folders present
            present = sorted(p.name for p in DATA.iterdir() if p.is_dir()) if DATA.is_dir() else []
            inputdataconfig = {name: {"TrainingInputMode": "File"} for name in present}
        if not isinstance(inputdataconfig, dict):
            raise UserError("inputdataconfig.json must hold a JSON object")

        print(
            f"current_host={resourceconfig.get('current_host', 'algo-1')} "
            f"hosts={json.dumps(resourceconfig.get('hosts', ['algo-1']))}",
            flush=True,
        )
        self.target = str(hyperparameters.get("target", "Species"))
        epochs = int_hyperparameter(hyperparameters, "epochs", 5, 1)
        sleep_per_epoch = float_hyperparameter(hyperparameters, "sleep_per_epoch", 0.0)
        print(f"hyperparameters: target={self.target} epochs={epochs}", flush=True)

        training = [name for name in inputdataconfig if name != "validation"]
        if not training:
            raise UserError("no training channel: give the job a channel such as 'train'")
        texts: list[tuple[str, str]] = []
        for name in training:
            mode = str(inputdataconfig[name].get("TrainingInputMode", "File"))
            print(f"channel {name}: {mode} mode", flush=True)
            texts += channel_texts(name, mode)
        header, rows = parse_rows(texts, "+".join(training))
        features, xs, ys = split_features(header, rows, self.target, "+".join(training))
        if not xs:
            raise UserError("the training channels hold a header but no data rows")
        validation: tuple[list[list[float]], list[str]] | None = None
        if "validation" in inputdataconfig:
            mode = str(inputdataconfig["validation"].get("TrainingInputMode", "File"))
            v_header, v_rows = parse_rows(channel_texts("validation", mode), "validation")
            if v_header != header:
                raise UserError(
                    f"channel validation has columns {','.join(v_header)} but the training "
                    f"data has {','.join(header)}"
                )
            _, vx, vy = split_features(v_header, v_rows, self.target, "validation")
            validation = (vx, vy)

        classes = sorted(set(ys))
        print(f"{len(xs)} rows, features {','.join(features)}, classes {classes}", flush=True)
        overall = mean_point(xs)
        class_means = {
            c: mean_point([x for x, y in zip(xs, ys, strict=True) if y == c]) for c in classes
        }
        # Every centroid starts at the overall mean and moves halfway to its class mean each epoch:
        # a real loop with a falling loss, so the per-epoch metric has something to show.
        model = NearestCentroid(features, {c: list(overall) for c in classes})
        self.model = model
        for epoch in range(1, epochs + 1):
            for c in classes:
                model.centroids[c] = [
                    v + 0.5 * (m - v)
                    for v, m in zip(model.centroids[c], class_means[c], strict=True)
                ]
            loss = sum(
                squared_distance(x, model.centroids[y]) for x, y in zip(xs, ys, strict=True)
            ) / (len(xs) * len(features))
            self.epochs_completed = epoch
            self.metrics = {"train_loss": loss}
            print(f"epoch={epoch} train_loss={loss:.4f}", flush=True)
            if sleep_per_epoch:
                time.sleep(sleep_per_epoch)

        self.metrics["accuracy"] = accuracy(model, xs, ys)
        print(f"accuracy={self.metrics['accuracy']:.4f}", flush=True)
        if validation is not None:
            self.metrics["validation_accuracy"] = accuracy(model, *validation)
            print(f"validation_accuracy={self.metrics['validation_accuracy']:.4f}", flush=True)
        self.save(stopped=False)

    def save(self, stopped: bool) -> None:
        MODEL_FILE.parent.mkdir(parents=True, exist_ok=True)
        document: dict = self.model.to_json() if self.model is not None else {}
        document.update(target=self.target, epochs_completed=self.epochs_completed, stopped=stopped)
        MODEL_FILE.write_text(json.dumps(document, indent=2) + "\n")
        (OUTPUT / "data").mkdir(parents=True, exist_ok=True)
        metrics = dict(self.metrics, epochs_completed=self.epochs_completed)
        (OUTPUT / "data" / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        print(f"saved {MODEL_FILE} (epochs_completed={self.epochs_completed})", flush=True)


def on_sigterm(signum: int, frame: object) -> None:
    raise Stopped


def train() -> int:
    trainer = Trainer()
    signal.signal(signal.SIGTERM, on_sigterm)
    try:
        trainer.run()
        return 0
    except Stopped:
        # Artifacts written during the stop grace period are kept as the job's model.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("SIGTERM: saving what has been trained and stopping", flush=True)
        trainer.save(stopped=True)
        return 0
    except Exception as exc:
        reason = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
        details = "" if isinstance(exc, UserError) else "\n\n" + traceback.format_exc()
        OUTPUT.mkdir(parents=True, exist_ok=True)
        (OUTPUT / "failure").write_text(reason + details)
        print(f"training failed: {reason}{details}", file=sys.stderr, flush=True)
        return 1


# ---------------------------------------------------------------------------------------------
# serving


class BadRequest(Exception):
    pass


def media_type(header: str | None) -> str:
    return (header or "").split(";", 1)[0].strip().lower()


def rows_from_csv(body: str) -> list[list[float]]:
    rows = []
    for row in csv.reader(io.StringIO(body)):
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            rows.append([float(cell) for cell in row])
        except ValueError:
            raise BadRequest(f"every value must be a number, got row {row}") from None
    return rows


def rows_from_json(body: str) -> list[list[float]]:
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    instances = document.get("instances") if isinstance(document, dict) else None
    if not isinstance(instances, list):
        raise BadRequest('expected a JSON object {"instances": [[feature, ...], ...]}')
    rows = []
    for instance in instances:
        if not isinstance(instance, list) or not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in instance
        ):
            raise BadRequest(f"each instance must be a list of numbers, got {instance!r}")
        rows.append([float(v) for v in instance])
    return rows


def make_handler(model: NearestCentroid) -> type[BaseHTTPRequestHandler]:
    width = len(model.features)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def reply(self, status: int, body: str, content_type: str = "text/plain") -> None:
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/ping":
                self.reply(200, "")
            else:
                self.reply(404, "only GET /ping and POST /invocations are served\n")

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/invocations":
                self.drain()
                self.reply(404, "only GET /ping and POST /invocations are served\n")
                return
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_BODY_BYTES:
                self.close_connection = True
                self.reply(413, f"the body must be 0 to {MAX_BODY_BYTES} bytes\n")
                return
            raw = self.rfile.read(length)
            kind = media_type(self.headers.get("Content-Type"))
            if kind not in ("text/csv", "application/json"):
                self.reply(415, f"send text/csv or application/json, not '{kind}'\n")
                return
            try:
                body = raw.decode("utf-8")
                rows = rows_from_csv(body) if kind == "text/csv" else rows_from_json(body)
                if not rows:
                    raise BadRequest("the request holds no rows")
                for row in rows:
                    if len(row) != width:
                        raise BadRequest(
                            f"each row needs {width} values ({','.join(model.features)}), "
                            f"got {len(row)}"
                        )
            except (BadRequest, UnicodeDecodeError) as exc:
                self.reply(400, f"{exc}\n")
                return
            predictions = [model.predict_one(row) for row in rows]
            if kind == "text/csv":
                self.reply(200, "".join(f"{p}\n" for p in predictions), "text/csv")
            else:
                self.reply(200, json.dumps({"predictions": predictions}), "application/json")

        def drain(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = 0
            if 0 < length <= MAX_BODY_BYTES:
                self.rfile.read(length)
            elif length:
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            print(f"{self.address_string()} {format % args}", flush=True)

    return Handler


def serve() -> int:
    try:
        model = NearestCentroid.from_json(json.loads(MODEL_FILE.read_text()))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"cannot load the model from {MODEL_FILE}: {exc}", file=sys.stderr, flush=True)
        return 1
    setting = os.environ.get("SAGEMAKER_BIND_TO_PORT", "8080")
    try:
        port = int(setting)
    except ValueError:
        print(f"SAGEMAKER_BIND_TO_PORT must be a port number, got {setting!r}", file=sys.stderr)
        return 1
    server = ThreadingHTTPServer(("0.0.0.0", port), make_handler(model))
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, on_sigterm)
    print(f"serving {len(model.centroids)} classes on 0.0.0.0:{port}", flush=True)
    try:
        server.serve_forever()
    except (Stopped, KeyboardInterrupt):
        print("stopping", flush=True)
    finally:
        server.server_close()
    return 0


def main(argv: list[str]) -> int:
    if argv == ["train"]:
        return train()
    if argv == ["serve"]:
        return serve()
    print(f"usage: program.py train|serve (got {argv})", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
