"""The shipped pydoc_continuation items are what :func:`models.local_task.build_items` builds, and lm-eval knows the task."""

import json

import pytest

from models.calibration import load_corpus
from models.local_task import CHOICES, ITEMS, TASK_NAME, build_items, tasks_dir


def test_shipped_items_rebuild_exactly():
    shipped = json.loads((tasks_dir() / TASK_NAME / f"{TASK_NAME}.json").read_text(encoding="utf-8"))
    assert shipped == build_items(load_corpus().text)
    assert len(shipped) == ITEMS and all(len(i["endings"]) == CHOICES for i in shipped)
    labels = [i["label"] for i in shipped]
    assert all(0 <= x < CHOICES for x in labels) and len(set(labels)) == CHOICES  # the answer is not always first
    for item in shipped:  # the right ending is not also one of the wrong ones
        assert item["endings"].count(item["endings"][item["label"]]) == 1


def test_items_come_from_the_held_out_tenth():
    text = load_corpus().text
    calibration_part = text[:int(len(text) * 0.9)]
    for item in build_items(text)[:16]:
        assert item["context"] + " " + item["endings"][item["label"]] not in calibration_part


def test_lm_eval_finds_the_task():
    pytest.importorskip("lm_eval")
    from models.zero_shot import PAPER7, ZeroShotSettings, check_tasks, parse_tasks

    check_tasks(ZeroShotSettings((TASK_NAME, *PAPER7)))
    assert parse_tasks("paper7,pydoc_continuation,boolq") == (*PAPER7, TASK_NAME)
