"""The course's one pipeline diagram, shown at the top of every lesson with its stage marked."""

from __future__ import annotations

import html
from dataclasses import dataclass

# (key, label, lessons that build it). The model's forward pass, left to right, then the
# stages that use the model.
STAGES: list[tuple[str, str, tuple[int, ...]]] = [
    ("text", "text", (1,)),
    ("tokens", "tokens", (2,)),
    ("embeddings", "embeddings", (3,)),
    ("positions", "+ positions", (4,)),
    ("attention", "attention", (5,)),
    ("blocks", "N transformer blocks", (6,)),
    ("head", "linear + softmax", (7,)),
    ("next_token", "next token", (7,)),
    ("training", "training", (8,)),
    ("sampling", "sampling", (9,)),
    ("evaluation", "evaluation", (10,)),
    ("finetuning", "fine-tuning", (11,)),
    ("deployment", "deployment", (12,)),
]
_FORWARD = 8  # the first 8 stages form the model's forward pass; the rest use the model


@dataclass
class Pipeline:
    """Renders as HTML in a notebook and as one text line elsewhere."""

    current: set[str]

    def _label(self, key: str, label: str) -> str:
        return f"[{label.upper()}]" if key in self.current else label

    def __repr__(self) -> str:
        forward = " -> ".join(self._label(k, lab) for k, lab, _ in STAGES[:_FORWARD])
        after = " | ".join(self._label(k, lab) for k, lab, _ in STAGES[_FORWARD:])
        return f"{forward}  (repeat for each new token)\nthen: {after}"

    def _repr_html_(self) -> str:
        def box(key: str, label: str) -> str:
            on = key in self.current
            style = (
                "padding:3px 8px;border-radius:6px;border:1px solid #888;white-space:nowrap;"
                + ("background:#ffb000;font-weight:bold;" if on else "background:#f2f2f2;")
            )
            return f'<span style="{style}">{html.escape(label)}</span>'

        arrow = '<span style="margin:0 4px">&rarr;</span>'
        forward = arrow.join(box(k, lab) for k, lab, _ in STAGES[:_FORWARD])
        after = " ".join(box(k, lab) for k, lab, _ in STAGES[_FORWARD:])
        return (
            '<div style="font-family:sans-serif;font-size:13px;line-height:2.2">'
            f"{forward}{arrow}<i>repeat for each new token</i><br>then: {after}</div>"
        )


def pipeline(current: str | int | None = None) -> Pipeline:
    """The pipeline diagram with ``current`` marked: a stage key or a lesson number."""
    keys = {k for k, _, _ in STAGES}
    if current is None:
        marked = set()
    elif isinstance(current, int):
        marked = {k for k, _, lessons in STAGES if current in lessons}
    elif current in keys:
        marked = {current}
    else:
        raise ValueError(f"Unknown stage {current!r}. Known stages: {', '.join(sorted(keys))}.")
    return Pipeline(marked)
