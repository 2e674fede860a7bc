"""The attention explorer: type a text, pick a layer and a head, see who attends to whom.

A thin ipywidgets front end over the tested pure functions in :mod:`gptlab.viz.attention`
(``attention_maps`` and ``plot_attention``)::

    from gptlab.widgets.attention_explorer import attention_explorer
    attention_explorer(model, tok.encode, lambda i: tok.decode([i]))

It works with any ``nn.Module`` whose forward pass runs ``gptlab.attention.CausalSelfAttention``
layers: the small stack of lesson 05, or a GPT (trained or not) in later lessons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import ipywidgets as widgets
from torch import Tensor, nn

from gptlab.viz.attention import attention_layers, attention_maps, plot_attention

__all__ = ["AttentionExplorer", "attention_explorer"]

MEAN = "mean"  # the head-menu value that averages all heads of a layer


class AttentionExplorer(widgets.VBox):
    """A text box, layer and head menus, and the heatmap of the chosen map.

    Attributes for use from code (and tests): ``text``, ``layer``, ``head`` (the controls),
    ``output`` (where the figure goes), ``maps`` (the last (n_layer, n_head, T, T) tensor)
    and ``tokens`` (its token strings). The maps are recomputed when the text changes (on
    Enter or when the box loses focus), the figure when anything changes.
    """

    def __init__(
        self,
        model: nn.Module,
        encode: Callable[[str], Sequence[int]],
        decode_token: Callable[[int], str],
        text: str = "To be, or not to be: that is the question.",
        max_tokens: int = 48,
    ) -> None:
        layers = attention_layers(model)
        if not layers:
            raise ValueError(f"{type(model).__name__} has no CausalSelfAttention layer to explore.")
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {max_tokens}.")
        self.model, self.encode, self.decode_token = model, encode, decode_token
        self.max_tokens = min(max_tokens, min(m.block_size for m in layers))
        self.maps: Tensor | None = None
        self.tokens: list[str] = []
        self.note = ""
        self._quiet = False
        self.text = widgets.Text(value=text, description="text", continuous_update=False,
                                 layout=widgets.Layout(width="95%"))
        self.layer = widgets.Dropdown(description="layer", layout=widgets.Layout(width="160px"))
        self.head = widgets.Dropdown(description="head", layout=widgets.Layout(width="200px"))
        self.output = widgets.Output()
        self._set_menus(len(layers), layers[0].n_head)
        super().__init__([self.text, widgets.HBox([self.layer, self.head]), self.output])
        self.text.observe(self._on_text, names="value")
        self.layer.observe(self._on_choice, names="value")
        self.head.observe(self._on_choice, names="value")
        self._on_text()

    def _set_menus(self, n_layer: int, n_head: int) -> None:
        """Menus for this many layers and heads, keeping the current choice when it still
        exists (changing a Dropdown's options resets its value)."""
        layer_options = [(f"layer {i}", i) for i in range(n_layer)]
        head_options = [(f"head {h}", h) for h in range(n_head)] + [("mean of heads", MEAN)]
        self._quiet = True  # no redraw per menu change: the caller draws once
        try:
            for menu, options in ((self.layer, layer_options), (self.head, head_options)):
                if list(menu.options) != options:
                    old = menu.value
                    menu.options = options
                    values = [v for _, v in options]
                    menu.value = old if old in values else values[0]
        finally:
            self._quiet = False

    def _on_text(self, change: object = None) -> None:
        """Encode the text, run the model, keep the maps; then redraw."""
        self.maps, self.tokens, self.note = None, [], ""
        try:
            ids = list(self.encode(self.text.value))
        except (ValueError, KeyError) as exc:
            self.note = f"Cannot encode this text: {exc}"
            ids = []
        if ids and len(ids) > self.max_tokens:
            self.note = f"(showing the first {self.max_tokens} of {len(ids)} tokens)"
            ids = ids[: self.max_tokens]
        if ids:
            self.maps = attention_maps(self.model, ids)  # (n_layer, n_head, T, T)
            self.tokens = [self.decode_token(int(i)) for i in ids]
            self._set_menus(self.maps.shape[0], self.maps.shape[1])
        elif not self.note:
            self.note = "Type some text above and press Enter."
        self._draw()

    def _on_choice(self, change: object = None) -> None:
        if not self._quiet:
            self._draw()

    def selected(self) -> Tensor | None:
        """The (T, T) map the menus point at (the mean over heads for 'mean of heads')."""
        if self.maps is None or self.layer.value is None or self.head.value is None:
            return None
        layer_maps = self.maps[self.layer.value]  # (n_head, T, T)
        return layer_maps.mean(0) if self.head.value == MEAN else layer_maps[self.head.value]

    def _draw(self) -> None:
        import matplotlib.pyplot as plt
        from IPython.display import display

        weights = self.selected()
        with self.output:
            self.output.clear_output(wait=True)
            if self.note:
                print(self.note)
            if weights is None:
                return
            head = "mean of heads" if self.head.value == MEAN else f"head {self.head.value}"
            fig = plot_attention(weights, self.tokens, title=f"layer {self.layer.value}, {head}")
            display(fig)
            plt.close(fig)


def attention_explorer(
    model: nn.Module,
    encode: Callable[[str], Sequence[int]],
    decode_token: Callable[[int], str],
    text: str = "To be, or not to be: that is the question.",
    max_tokens: int = 48,
) -> AttentionExplorer:
    """The attention explorer widget for ``model`` (display it as a cell's last value).

    ``encode``: text -> token ids (``tok.encode``); ``decode_token``: one id -> its text
    (``lambda i: tok.decode([i])``). ``text`` is the starting text; at most ``max_tokens``
    tokens (and never more than the model's block_size) are shown.
    """
    return AttentionExplorer(model, encode, decode_token, text=text, max_tokens=max_tokens)
