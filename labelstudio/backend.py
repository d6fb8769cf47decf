"""The Label Studio ML backend: serves a trained model over Label Studio's ML backend protocol
(Project Settings > Model > Connect Model) and retrains it when Label Studio asks.

    python -m labelstudio serve --model models/news [--config configs/news.yaml] [--port 9090]

Flask, served by waitress: Flask is what Label Studio's own ML backends are built on, so its
requests and answers are the ones they document; waitress is a pure-Python production server
with a request size limit. One process with a few threads, because the model is loaded once
and shared, and the training state must be one; predictions take turns on the model (a CPU
has no spare cores for two at once), while /health, /setup and /webhook answer at once.
"""

import functools
import hmac
import logging
import os
import threading
import time
from pathlib import Path

import numpy as np
from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from labelstudio.predictions import predictions
from labelstudio.projects import served_schema
from labelstudio.retrain import Retraining
from tagger.cli import UserError
from tagger.hub import in_hub_cache
from tagger.labels import LabelSchema
from tagger.predictor import tagger_from
from train.run import splits_as_trained

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 64 * 1024 * 1024  # about 50,000 tasks: Label Studio sends a whole selection at once
TRAINING_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED")


class Serving:
    """The model being served, and the switch to a newer one."""

    def __init__(self, model_dir: Path, load):
        self.load = load  # model folder -> Tagger, with the command's mode and batch size
        hub_id = in_hub_cache(model_dir)
        # New versions are named after the model first served, and trained beside it; beside a
        # model from the Hub's cache is the cache, so they go to models/.
        self.name = hub_id.split("/")[-1] if hub_id else Path(model_dir).name
        self.home = Path("models") if hub_id else Path(model_dir).parent
        self.model_dir, self.tagger = Path(model_dir), load(model_dir)
        self.turn = threading.Lock()  # one scoring at a time

    @property
    def version(self) -> str:
        return self.name if in_hub_cache(self.model_dir) else self.model_dir.name

    def scores(self, texts: list[str]) -> np.ndarray:
        with self.turn:
            return self.tagger.scores(texts)

    def schema_for(self, label_config: str | None, project) -> LabelSchema:
        """The project's control that predictions answer with (its names and labels), or the
        model's own without a labeling config; BadRequest 422 if the model cannot serve it."""
        if not label_config:
            return self.tagger.schema
        try:
            return project_schema(label_config, self.tagger.schema, str(project))
        except UserError as error:
            raise BadRequest(str(error), 422) from None

    def predictions(self, tasks: list, label_config: str | None, project) -> list[dict]:
        """One Label Studio prediction per task, with this model's version, under the project's names."""
        with self.turn:
            tagger, version = self.tagger, self.version
            schema = self.schema_for(label_config, project)
            scores = tagger.scores([task_text(task, i, schema) for i, task in enumerate(tasks)])
        return predictions(tagger, scores, schema, version)

    def switch(self, tagger, model_dir: Path) -> None:
        with self.turn:
            self.tagger, self.model_dir = tagger, Path(model_dir)
        log.info("Now serving %s (restart with --model %s to keep serving it)", model_dir, model_dir)

    def trained_texts(self) -> set[str] | None:
        """The sentences the serving model was trained on; None if its data is not at hand."""
        try:
            return set(splits_as_trained(self.model_dir)[0]["train"]["text"])
        except (UserError, OSError, KeyError) as error:
            log.warning("The training data of %s is not at hand (%s)", self.model_dir, error)
            return None


@functools.lru_cache(maxsize=64)
def project_schema(label_config: str, model: LabelSchema, project: str) -> LabelSchema:
    """served_schema, parsed once per project config and model: Label Studio sends the config with
    every /predict request."""
    return served_schema(label_config, model, f"project {project}")


class BadRequest(Exception):
    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.status = status


def create_app(serving: Serving, retraining: Retraining, train_every: int = 0,
               basic_auth: tuple[str, str] | None = None) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    annotations_since: dict = {}  # project id -> annotations created or updated since its last run

    @app.before_request
    def check_auth():
        given = request.authorization
        if basic_auth and not (given and all(hmac.compare_digest(str(a).encode(), b.encode()) for a, b in
                                             zip((given.username, given.password), basic_auth))):
            return jsonify(error="HTTP basic authentication required"), 401, {"WWW-Authenticate": 'Basic realm="backend"'}

    @app.get("/")
    @app.get("/health")
    def health():
        return jsonify(status="UP", model_class="Tagger", model_version=serving.version)

    @app.post("/setup")
    def setup():
        body = json_body()
        if body.get("schema"):
            serving.schema_for(body["schema"], body.get("project"))
        return jsonify(model_version=serving.version)

    @app.post("/predict")
    def predict():
        body = json_body()
        tasks = body.get("tasks")
        if not isinstance(tasks, list):
            raise BadRequest('expected {"tasks": [...]}')
        started = time.perf_counter()
        results = serving.predictions(tasks, body.get("label_config"), body.get("project"))
        log.info("Predicted %d tasks in %.0f ms", len(tasks), 1000 * (time.perf_counter() - started))
        return jsonify(results=results)

    @app.post("/webhook")
    def webhook():  # Label Studio waits about a second for this answer: training goes on in the background
        body = json_body()
        action, project = body.get("action"), body.get("project")
        project_id = project.get("id") if isinstance(project, dict) else None
        if action == "START_TRAINING" and not isinstance(project_id, int):
            raise BadRequest("START_TRAINING without project.id")
        if action in TRAINING_EVENTS and train_every and isinstance(project_id, int):
            annotations_since[project_id] = annotations_since.get(project_id, 0) + 1
            if annotations_since[project_id] < train_every:
                return jsonify(status="counted"), 201
        elif action != "START_TRAINING":
            return jsonify(status="ignored"), 200
        annotations_since[project_id] = 0
        return jsonify(status="started" if retraining.start(project_id) else "already running"), 201

    @app.get("/metrics")
    def metrics():
        return jsonify(model_version=serving.version, model_dir=str(serving.model_dir),
                       last_training=retraining.last)

    @app.errorhandler(BadRequest)
    def bad_request(error):
        log.info("Refused %s %s: %s", request.method, request.path, error)
        return jsonify(error=str(error)), error.status

    @app.errorhandler(HTTPException)
    def http_error(error):  # werkzeug's own: 404, 405, 413, malformed JSON
        return jsonify(error=f"{error.code} {error.name}: {error.description}"), error.code

    return app


def json_body() -> dict:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise BadRequest("the body is not a JSON object")
    return body


def task_text(task, index: int, schema: LabelSchema) -> str:
    data = task.get("data") if isinstance(task, dict) else None
    text = data.get(schema.text_field) if isinstance(data, dict) else None
    if not isinstance(text, str):
        where = f"task {index}" + (f" (id {task.get('id')})" if isinstance(task, dict) and "id" in task else "")
        raise BadRequest(f"{where}: no text in data.{schema.text_field}")
    return text


def basic_auth_from_env() -> tuple[str, str] | None:
    """HTTP basic auth from BASIC_AUTH_USER and BASIC_AUTH_PASS, as Label Studio's ML backends name them."""
    user, password = os.environ.get("BASIC_AUTH_USER"), os.environ.get("BASIC_AUTH_PASS")
    if bool(user) != bool(password):
        raise UserError("set both BASIC_AUTH_USER and BASIC_AUTH_PASS, or neither")
    return (user, password) if user else None


def serve(args) -> None:
    """Load the model, then answer Label Studio until interrupted."""
    import waitress

    auth = basic_auth_from_env()
    for path in (args.config, *args.data_files):  # found now, not when Label Studio asks for training
        if not path.is_file():
            raise UserError(f"{path}: no such file (--config / --data_files of serve)")
    serving = Serving(args.model, lambda model_dir: tagger_from(args, model_dir))
    retraining = Retraining(serving, args.config.resolve(), [path.resolve() for path in args.data_files],
                            os.environ.get("LABEL_STUDIO_URL"), os.environ.get("LABEL_STUDIO_API_KEY"), args.next_batch)
    app = create_app(serving, retraining, args.train_every, auth)
    log.info("Serving %s on http://%s:%d (basic auth %s; training with %s)", serving.model_dir, args.host, args.port,
             "on" if auth else "off", args.config)
    waitress.serve(app, host=args.host, port=args.port, threads=8, max_request_body_size=2 * MAX_REQUEST_BYTES,  # Flask answers first, in JSON
                   clear_untrusted_proxy_headers=True, ident="war-news-tagger")
