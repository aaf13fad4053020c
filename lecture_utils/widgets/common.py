"""Pieces every panel shares: sliders for λ and the step size, a run button with a live
preview, a status line and a loss curve.

The optimisation panels pass :meth:`RunArea.live` as the callback of the one loop
(:func:`lecture_utils.optimize.optimize_image`) and show its result with
:meth:`RunArea.finish`; the one-picture panels (saliency, GrabCut, guided maps) use
:meth:`RunArea.show`. Curves are :func:`lecture_utils.display.plot_history`'s."""

from __future__ import annotations

import io

import ipywidgets as W
import numpy as np

from ..display import plot_history, to_png

STYLE = {"description_width": "110px"}
LAYOUT = W.Layout(width="420px")


def lambda_slider(value: float, description: str = "λ (L2 prior)") -> W.FloatLogSlider:
    """A log-scale slider for a penalty weight λ, from 1e-7 to 1."""
    return W.FloatLogSlider(value=max(value, 1e-7), base=10, min=-7, max=0, step=0.1,
                            description=description, readout_format=".1e", style=STYLE,
                            layout=LAYOUT, continuous_update=False)


def step_size_slider(value: float) -> W.FloatLogSlider:
    """A log-scale slider for the step size (learning rate), from 1e-3 to 10."""
    return W.FloatLogSlider(value=value, base=10, min=-3, max=1, step=0.1,
                            description="step size", readout_format=".3g", style=STYLE,
                            layout=LAYOUT, continuous_update=False)


def steps_slider(value: int, max_steps: int = 512) -> W.IntSlider:
    """How many optimisation steps to run."""
    return W.IntSlider(value=value, min=8, max=max_steps, step=8, description="steps",
                       style=STYLE, layout=LAYOUT, continuous_update=False)


def curve_png(history: dict[str, list[float]], title: str) -> bytes:
    """The loss curves as PNG bytes (matplotlib's object API: no global pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2, 2.6), dpi=80)
    FigureCanvasAgg(fig)
    plot_history(history, ax=fig.add_subplot(), title=title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


class RunArea:
    """A run button, a status line, a live preview image and (optionally) a loss curve."""

    def __init__(self, label: str = "Run", size: int = 224, curve: bool = True,
                 curve_title: str = "objective") -> None:
        self.button = W.Button(description=label, button_style="primary", icon="play")
        self.status = W.HTML(value="<i>Press run.</i>")
        blank = np.full((size, size, 3), 0.5)
        self.preview = W.Image(value=to_png(blank), format="png", width=size, height=size)
        self.curve_title = curve_title
        self.curve = W.Image(value=curve_png({}, curve_title), format="png") if curve else None
        self.error = W.Output()

    def live(self, step: int, images: np.ndarray, history: dict) -> None:
        """The optimisation loop's callback: the first image, the curves so far, and the
        loop's own term (the first of ``history``: the score, or the code loss) in the status."""
        self.preview.value = to_png(images[0])  # first: the picture is what the eye waits for
        if self.curve is not None:
            self.curve.value = curve_png(history, self.curve_title)
        name, values = next(iter(history.items()))
        self.status.value = f"step {step}: {name} {values[-1]:.3g}"

    def finish(self, result, status: str) -> None:
        """Show an :class:`~lecture_utils.optimize.OptimizationResult`: its first image, its
        whole history and a status line."""
        steps = len(next(iter(result.history.values()), []))
        self.live(steps, result.images, result.history)
        self.status.value = status

    def show(self, picture: np.ndarray | bytes, status: str) -> None:
        """A one-picture panel's result: the picture (an image or PNG bytes) and a status."""
        self.preview.value = picture if isinstance(picture, bytes) else to_png(picture)
        self.status.value = status

    def box(self, controls: list) -> W.Widget:
        return W.HBox([
            W.VBox([*controls, W.HBox([self.button, self.status]), self.error]),
            W.VBox([self.preview]),
            *([W.VBox([self.curve])] if self.curve is not None else []),
        ])

    def on_run(self, action) -> None:
        """Call ``action()`` on a click, with the button disabled and errors shown, not lost."""

        def handler(_button):
            self.button.disabled = True
            self.error.clear_output()
            try:
                action()
            except (ValueError, KeyError, TypeError) as err:  # a bad setting: say what to fix
                self.status.value = f"<b style='color:#b00'>{err}</b>"
            except Exception:
                with self.error:
                    raise
            finally:
                self.button.disabled = False

        self.button.on_click(handler)
