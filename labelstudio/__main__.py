"""Label Studio, both ways (label-studio-sdk 2.x): projects and task import, export with the
project's labeling config, model predictions pushed back for annotators, and the ML backend.

python -m labelstudio import  --url URL (--title NAME [--label_config FILE] | --project ID) --tasks data/seed_tasks.json
python -m labelstudio export  --url URL --project ID --output FILE
python -m labelstudio predict --url URL --project ID --model models/NAME [--next_batch 100]
python -m labelstudio serve   --model models/NAME [--config configs/X.yaml] [--port 9090] [--next_batch 100]

The address is read from LABEL_STUDIO_URL or --url, the API key (a personal access token) from
LABEL_STUDIO_API_KEY or --api_key. The key is never printed, logged or written: errors name the
server and the problem, not the request. `export` writes the project's labeling config beside
the export (FILE with .label_config.xml for .json): train with `--label_config` on it.
`python -m train.labelstudio` is another name for this command.
"""

import json
import os
from pathlib import Path

from labelstudio.client import connect
from labelstudio.predictions import NEXT_BATCH, push_predictions
from labelstudio.projects import BUNDLED_CONFIG, checked_project, create_project, export, import_tasks
from tagger.cli import ArgumentParser, UserError, add_model_option, add_tagger_options, run_command


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    if getattr(args, "next_batch", 0) < 0:
        raise UserError(f"--next_batch {args.next_batch}: give 0 (no tab) or more tasks")
    if args.command == "serve":
        from labelstudio.backend import serve  # Flask and torch only for this command
        return serve(args)
    if not args.url:
        raise UserError("no Label Studio address: pass --url or set LABEL_STUDIO_URL")
    client = connect(args.url, args.api_key)
    if args.command == "export":
        export(client, args.url, args.project, args.output, args.choices_control)
    elif args.command == "predict":
        push_predictions(client, args.url, args.project, args.model, args.model_version, args.next_batch)
    else:
        tasks = json.loads(args.tasks.read_text(encoding="utf-8"))
        project_id = (args.project if args.project is not None
                      else create_project(client, args.url, args.title, args.label_config))
        checked_project(client, args.url, project_id)
        import_tasks(client, args.url, project_id, tasks)
        print(project_id)


def parser() -> ArgumentParser:
    main_parser = ArgumentParser("python -m labelstudio", __doc__)
    commands = main_parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    connection = ArgumentParser("", add_help=False)
    connection.add_argument("--url", default=os.environ.get("LABEL_STUDIO_URL"),
                            help="Label Studio address, e.g. http://localhost:8080 (default: $LABEL_STUDIO_URL).")
    connection.add_argument("--api_key", default=os.environ.get("LABEL_STUDIO_API_KEY"),
                            help="Personal access token (default: $LABEL_STUDIO_API_KEY).")
    imports = commands.add_parser("import", parents=[connection], help="Import tasks into a project.")
    where = imports.add_mutually_exclusive_group(required=True)
    where.add_argument("--project", type=int, help="Id of an existing project.")
    where.add_argument("--title", help="Create a project with this title.")
    imports.add_argument("--tasks", type=Path, required=True, help="Tasks JSON from `python -m train.prepare`.")
    imports.add_argument("--label_config", type=Path, default=BUNDLED_CONFIG,
                         help="Labeling config of a project created with --title (default: data/label_config.xml).")
    exports = commands.add_parser("export", parents=[connection], help="Export a project's annotations.")
    exports.add_argument("--project", type=int, required=True, help="Project id.")
    exports.add_argument("--output", type=Path, required=True,
                         help="File to write; the labeling config goes beside it, as FILE.label_config.xml.")
    exports.add_argument("--choices_control", default="",
                         help="The Choices control to read, when the labeling config has several.")
    predicts = commands.add_parser("predict", parents=[connection], help="Push a model's predictions to a project.")
    predicts.add_argument("--project", type=int, required=True, help="Project id.")
    add_model_option(predicts)
    predicts.add_argument("--model_version", help="Name shown in Label Studio (default: the folder name).")
    predicts.add_argument("--next_batch", type=int, default=NEXT_BATCH,
                          help=f"Tasks in the `Next to annotate` tab (default {NEXT_BATCH}; 0: no such tab).")
    add_serve_parser(commands)
    return main_parser


def add_serve_parser(commands) -> None:
    serve = commands.add_parser(
        "serve", help="Serve a model as a Label Studio ML backend.",
        description="Serve a model as a Label Studio ML backend (docs/label-studio.md). Label Studio's address and "
                    "personal access token, used when it asks for training, are read from LABEL_STUDIO_URL and "
                    "LABEL_STUDIO_API_KEY; HTTP basic auth is on when BASIC_AUTH_USER and BASIC_AUTH_PASS are set.")
    add_model_option(serve)
    serve.add_argument("--config", type=Path, default=Path("configs/news.yaml"),
                       help="Training config for runs that Label Studio starts (default: configs/news.yaml).")
    serve.add_argument("--data_files", type=Path, nargs="*", default=[],
                       help="Exports to train on besides the project's annotations, e.g. the bundled ones "
                            "(default: none).")
    serve.add_argument("--train_every", type=int, default=0,
                       help="Also train after this many new or updated annotations (default: 0, only when "
                            "Start Training is pressed).")
    serve.add_argument("--next_batch", type=int, default=NEXT_BATCH,
                       help=f"Tasks in the project's `Next to annotate` tab, refreshed whenever training switches "
                            f"models (default {NEXT_BATCH}; 0: no such tab).")
    serve.add_argument("--host", default="127.0.0.1", help="Address to listen on (default: 127.0.0.1, this machine "
                                                           "only; 0.0.0.0 for every interface).")
    serve.add_argument("--port", type=int, default=9090, help="Port (default: 9090, as Label Studio's backends).")
    add_tagger_options(serve, default_mode="fp32")


if __name__ == "__main__":
    run_command(main)
