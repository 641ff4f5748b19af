"""`experiment init`: write a plan folder from a preset (and, for the smoke preset, a tiny base
model and small generated data when the user gives none)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .plan import Plan, paper_preset, smoke_preset, write_plan

PRESETS = ("paper", "smoke")

_ZH = [("秋天", "落叶"), ("春天", "细雨"), ("大海", "潮声"), ("月亮", "清辉"), ("故乡", "炊烟"),
       ("高山", "云海"), ("冬夜", "炉火"), ("远方", "列车")]
_EN = [("the sea", "waves"), ("a city", "lights"), ("winter", "snow"), ("a garden", "roses")]


def smoke_data(folder: Path) -> tuple[Path, Path]:
    """Eight small creative triplets (zh) and eight general rows (4 zh, 4 en), written once."""
    data = folder / "data"
    data.mkdir(parents=True, exist_ok=True)
    trip, gen = data / "triplets.jsonl", data / "general.jsonl"
    if not trip.exists():
        rows = [{"id": f"cw{i}", "query": f"写一首关于{a}的短诗",
                 "thought": f"用户想要一首写{a}的诗。我先选意象：{b}，再定情绪，最后收束。",
                 "answer": f"{a}里有{b}，\n{b}里有心事，\n心事随风去，\n只留{a}在。"}
                for i, (a, b) in enumerate(_ZH)]
        trip.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    if not gen.exists():
        rows = [{"id": f"gz{i}", "lang": "zh", "prompt": f"简单介绍一下{a}。",
                 "response": f"{a}常常让人想到{b}。"} for i, (a, b) in enumerate(_ZH[:4])]
        rows += [{"id": f"ge{i}", "lang": "en", "prompt": f"Describe {a} in one sentence.",
                  "response": f"{a.capitalize()} is full of {b}."} for i, (a, b) in enumerate(_EN)]
        gen.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return trip, gen


def _rel(p: Path, folder: Path) -> str:
    p = p.resolve()
    try:
        return str(p.relative_to(folder.resolve()))
    except ValueError:
        return str(p)


def init_plan(folder: Path, preset: str, *, triplets: Path | None = None, reviewed: bool = False,
              db: Path | None = None, general_files: list[Path] | None = None,
              base_model: str | None = None, judge: dict[str, Any] | None = None) -> Path:
    """Write `folder/plan.yaml` for the preset; returns its path."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    folder.mkdir(parents=True, exist_ok=True)
    general = [_rel(f, folder) for f in general_files or []]
    if preset == "smoke":
        if base_model is None:
            from ..train.tiny import build_tiny_model

            if not (folder / "base-model" / "config.json").exists():
                build_tiny_model(folder / "base-model")
            base_model = "base-model"
        data = smoke_preset(base_model)
        made_trip, made_gen = smoke_data(folder)  # used for what the user does not give
        if triplets is None and not reviewed and db is None:
            triplets = made_trip
        general = general or [_rel(made_gen, folder)]
    else:
        data = paper_preset(base_model or "Qwen/Qwen2.5-7B-Instruct")
    if triplets is not None:
        data["creative"] = {"source": "file", "file": _rel(triplets, folder)}
    else:
        data["creative"] = {"source": "reviewed" if reviewed else "store",
                            "db": str((db or Path("coig-writer.sqlite")).resolve())}
    data["general_files"] = general
    if judge:
        data["judge"].update({k: v for k, v in judge.items() if v})
    plan = Plan.model_validate(data).check()
    return write_plan(plan, folder, preset)
