"""A model's weights by role: what `train` exports, the SavedModel stores and the runtimes build from.

    w = Weights(embedding, [RecurrentLayer(kernel, recurrent, bias), ...], dense_kernel, dense_bias, book_states)
    w.rnn[0].kernel, w.units, w.cell

Keras's layouts: a GRU's gates in the order z, r, h (reset_after, so two bias rows), an
LSTM's in the order i, f, c, o. G is the number of gates (3 or 4), H the units per layer.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass
class RecurrentLayer:
    kernel: np.ndarray  # [in, G*H]: the layer's input (the embedding, or the layer below's h)
    recurrent: np.ndarray  # [H, G*H]: its own h
    bias: np.ndarray  # GRU [2, G*H] (input row, recurrent row); LSTM [G*H]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"kernel": self.kernel, "recurrent": self.recurrent, "bias": self.bias}


@dataclass
class Weights:
    embedding: np.ndarray  # [V, E]
    rnn: list[RecurrentLayer]  # bottom layer first
    dense_kernel: np.ndarray  # [H, V]
    dense_bias: np.ndarray  # [V]
    book_states: np.ndarray | None = None  # [K+1, S, H]: where each novel starts (None: the shared layers only)
    book_gates: np.ndarray | None = None  # world "input": [K+1, G*H], each novel's share of layer 0's gates

    @property
    def units(self) -> int:
        return int(self.rnn[0].recurrent.shape[0])

    @property
    def cell(self) -> str:
        return "gru" if np.ndim(self.rnn[0].bias) == 2 else "lstm"

    @property
    def recurrent_states(self) -> int:
        """State vectors of the layers: one per GRU layer, two (h, c) per LSTM layer."""
        return len(self.rnn) * (1 if self.cell == "gru" else 2)

    def replace(self, **changes) -> Weights:
        return dataclasses.replace(self, **changes)
