"""Print the counts of data/README.md from the exports themselves, read as training reads them.

    python scripts/datasheet.py data/seed_export.json data/news_batch1_export.json data/news_batch2_export.json

Per file and together: tasks, sentences, what was skipped, label counts (after resolving several
annotations), sentences with no event, outlets, and annotator agreement (Cohen's kappa per label).
"""

import sys
from collections import Counter

from tagger.annotations import read_export, read_exports
from tagger.labels import read_label_config

SCHEMA, _ = read_label_config("data/label_config.xml")


def column(sentences, summary, outlets: list[str]) -> dict[str, str]:
    agreement = summary.agreement()
    per_outlet = Counter(s.outlet for s in sentences)
    return {
        "tasks": f"{summary.tasks:,}",
        "sentences (annotated, kept)": f"{summary.sentences:,}",
        "articles": f"{len({s.group for s in sentences}):,}",
        **{label: f"{summary.label_counts[label]:,}" for label in SCHEMA.labels},
        "no event": f"{sum(not s.labels for s in sentences):,}",
        "several events": f"{sum(len(s.labels) > 1 for s in sentences):,}",
        "tasks annotated twice or more": f"{summary.multi_annotated:,}",
        "cancelled annotations (ignored)": f"{summary.cancelled_annotations:,}",
        **{f"kappa {label}": "n/a" if k is None else f"{k:.2f}" for label, k in agreement["cohen_kappa"].items()},
        **{f"outlet {name or '(not given)'}": f"{per_outlet[name]:,}" for name in outlets},
    }


def main(paths: list[str]) -> None:
    every, summary = read_exports(paths, SCHEMA)
    outlets = [name for name, _ in Counter(s.outlet for s in every).most_common()]
    columns = {path: column(*read_export(path, SCHEMA), outlets) for path in paths}
    if len(paths) > 1:
        columns["all"] = column(every, summary, outlets)
    print("| | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for row in next(iter(columns.values())):
        print(f"| {row} | " + " | ".join(c[row] for c in columns.values()) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
