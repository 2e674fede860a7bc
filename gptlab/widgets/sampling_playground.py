"""The sampling playground: a prompt, sliders for the sampling settings, streamed output, and
the next-token distribution as a bar chart.

A thin ipywidgets front end over the tested pure functions in :mod:`gptlab.viz.sampling`
(``playground_step``, ``plot_next_token``) and :mod:`gptlab.generate`::

    from gptlab.widgets.sampling_playground import sampling_playground
    sampling_playground(model, tok, prompt="ROMEO:")

Move a slider and the bar chart shows how temperature, top-k and top-p reshape the
distribution of the token after the prompt; press Generate to sample a continuation, shown
token by token as it is made. "Append" moves the continuation into the prompt, so the chart
then shows the distribution at the new position.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets
from torch import nn

from gptlab.viz.sampling import TextTokenizer, playground_step, plot_next_token

__all__ = ["SamplingPlayground", "sampling_playground"]


class SamplingPlayground(widgets.VBox):
    """Prompt box, sliders (temperature, top-k, top-p, length), seed, buttons, output, chart.

    Attributes for use from code (and tests): the controls ``prompt``, ``temperature``,
    ``top_k`` (0 = off), ``top_p`` (1 = off), ``length``, ``seed``, ``button``, ``append``;
    ``output`` (an HTML widget with the prompt and the streamed continuation), ``chart`` (an
    Output with the bar chart), ``text`` (the last continuation), ``top`` (the chart's
    (token, probability) pairs) and ``note`` (the last error message, or "").
    """

    def __init__(self, model: nn.Module, tokenizer: TextTokenizer, prompt: str = "\n",
                 max_new_tokens: int = 100, temperature: float = 0.8, n_top: int = 10,
                 seed: int = 0) -> None:
        self.model, self.tokenizer, self.n_top = model, tokenizer, n_top
        self.text, self.note = "", ""
        self.top: list[tuple[str, float]] = []
        vocab = getattr(getattr(model, "config", None), "vocab_size", None) or getattr(
            tokenizer, "vocab_size", 100)
        wide = {"style": {"description_width": "110px"}, "layout": widgets.Layout(width="420px")}
        self.prompt = widgets.Textarea(value=prompt, description="prompt",
                                       continuous_update=False,
                                       layout=widgets.Layout(width="95%", height="70px"))
        self.temperature = widgets.FloatSlider(value=temperature, min=0.0, max=2.0, step=0.05,
                                               description="temperature", **wide)
        self.top_k = widgets.IntSlider(value=0, min=0, max=min(int(vocab), 200),
                                       description="top-k (0 = off)", **wide)
        self.top_p = widgets.FloatSlider(value=1.0, min=0.05, max=1.0, step=0.05,
                                         description="top-p (1 = off)", **wide)
        self.length = widgets.IntSlider(value=max_new_tokens, min=1,
                                        max=max(500, max_new_tokens),
                                        description="new tokens", **wide)
        self.seed = widgets.IntText(value=seed, description="seed",
                                    layout=widgets.Layout(width="180px"))
        self.button = widgets.Button(description="Generate", button_style="primary")
        self.append = widgets.Button(description="Append to prompt")
        self.output = widgets.HTML(layout=widgets.Layout(width="95%"))
        self.chart = widgets.Output()
        controls = widgets.VBox([self.temperature, self.top_k, self.top_p, self.length,
                                 widgets.HBox([self.seed, self.button, self.append])])
        super().__init__([self.prompt, widgets.HBox([controls, self.chart]), self.output])
        for control in (self.prompt, self.temperature, self.top_k, self.top_p):
            control.observe(self._on_change, names="value")
        self.button.on_click(lambda _: self.generate())
        self.append.on_click(lambda _: self.keep())
        self._show("")
        self.draw_chart()

    def settings(self) -> dict[str, Any]:
        """The sliders' values as sampling arguments (None for a filter that is off)."""
        return {"temperature": self.temperature.value,
                "top_k": self.top_k.value or None,
                "top_p": None if self.top_p.value >= 1.0 else self.top_p.value}

    def generate(self) -> str:
        """Sample a continuation with the current settings, streaming it into ``output``."""
        self.note = ""
        try:
            self.text, self.top = playground_step(
                self.model, self.tokenizer, self.prompt.value, max_new_tokens=self.length.value,
                seed=self.seed.value, on_text=self._show, n_top=self.n_top, **self.settings())
        except (ValueError, KeyError) as exc:  # a prompt the tokenizer cannot encode, ...
            self.note, self.text = f"Cannot generate: {exc}", ""
        self._show(self.text)
        self._draw()
        return self.text

    def keep(self) -> None:
        """Move the last continuation into the prompt (the chart follows)."""
        if self.text:
            self.prompt.value, self.text = self.prompt.value + self.text, ""
            self._show("")

    def draw_chart(self) -> None:
        """Recompute the next-token distribution after the prompt and redraw the chart."""
        self.note = ""
        try:
            _, self.top = playground_step(self.model, self.tokenizer, self.prompt.value,
                                          max_new_tokens=0, n_top=self.n_top,
                                          **self.settings())
        except (ValueError, KeyError) as exc:
            self.note, self.top = f"Cannot show the next token: {exc}", []
        self._draw()

    def _on_change(self, change: object = None) -> None:
        self.draw_chart()

    def _show(self, text: str) -> None:
        """The prompt in grey, the continuation in bold, whitespace kept."""
        note = f"<p style='color:#b00'>{html.escape(self.note)}</p>" if self.note else ""
        self.output.value = (
            f"{note}<pre style='white-space: pre-wrap; font-size: 13px'>"
            f"<span style='color:#888'>{html.escape(self.prompt.value)}</span>"
            f"<b>{html.escape(text)}</b></pre>")

    def _draw(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        with self.chart:
            self.chart.clear_output(wait=True)
            if self.note:
                print(self.note)
            if not self.top:
                return
            fig = plot_next_token(self.top, title="next token after the prompt")
            display(fig)
            plt.close(fig)


def sampling_playground(model: nn.Module, tokenizer: TextTokenizer, prompt: str = "\n",
                        max_new_tokens: int = 100, temperature: float = 0.8,
                        n_top: int = 10, seed: int = 0) -> SamplingPlayground:
    """The sampling playground for ``model`` and its ``tokenizer`` (anything with ``encode``
    and ``decode``); display it as a cell's last value."""
    return SamplingPlayground(model, tokenizer, prompt=prompt, max_new_tokens=max_new_tokens,
                              temperature=temperature, n_top=n_top, seed=seed)
