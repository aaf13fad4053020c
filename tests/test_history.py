"""The loss history keeps tensors until asked, then reads them all at once."""

from __future__ import annotations

import torch

from lecture_utils.history import History


def test_values_are_batch_means_in_step_order_and_the_dict_grows():
    history = History("loss", "penalty")
    history.add(loss=torch.tensor([1.0, 3.0]), penalty=torch.tensor(0.5))
    first = history.values()
    assert first == {"loss": [2.0], "penalty": [0.5]}
    history.add(loss=torch.tensor([4.0, 6.0], requires_grad=True), penalty=torch.tensor(1.5))
    assert history.values() is first  # callers holding the dict see later steps
    assert first == {"loss": [2.0, 5.0], "penalty": [0.5, 1.5]}
    assert all(isinstance(v, float) for v in first["loss"])


def test_nothing_is_read_before_values_is_called():
    history = History("loss")
    history.add(loss=torch.tensor([2.0]))
    assert history._values["loss"] == [] and len(history._pending["loss"]) == 1
    assert isinstance(history._pending["loss"][0], torch.Tensor)
