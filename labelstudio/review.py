"""A Data Manager tab that lists tasks for annotators to re-check (the label audit's suspects).
It only adds a tab: no annotation, prediction or task data is changed."""

import logging

from label_studio_sdk import LabelStudio

from labelstudio.client import call

log = logging.getLogger(__name__)

REVIEW_TAB = "Review: likely label errors"


def push_review_tab(client: LabelStudio, url: str, project_id: int, task_ids: list[int],
                    title: str = REVIEW_TAB) -> int | None:
    """Make the tab `title` list exactly `task_ids`, replacing a tab of that title made before;
    returns the new tab's id (None, and no tab, without tasks: a filter of nothing lists everything)."""
    earlier = [view.id for view in call(url, client.views.list, project=project_id)
               if (view.data or {}).get("title") == title]
    if not task_ids:
        for view_id in earlier:
            call(url, client.views.delete, id=view_id)
        log.info("Project %d: no task to re-check; tab %r removed where it was", project_id, title)
        return None
    items = [{"filter": "filter:tasks:id", "operator": "equal", "type": "Number", "value": int(task_id)}
             for task_id in dict.fromkeys(task_ids)]
    # Data Manager sorts by stored task fields only, so the tab keeps task order; the suspicion
    # order is in suspects.jsonl and audit.md.
    view = call(url, client.views.create, project=project_id,
                data={"title": title, "filters": {"conjunction": "or", "items": items}, "ordering": ["tasks:id"]})
    for view_id in earlier:  # only now that the new tab is in
        call(url, client.views.delete, id=view_id)
    log.info("Project %d: tab %r lists %d tasks to re-check (replacing %d earlier tab(s))", project_id, title,
             len(items), len(earlier))
    return view.id
