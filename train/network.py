"""The character model in Keras 3: Embedding → N × (GRU|LSTM → Dropout) → Dense(vocab).

Backend-neutral (keras.layers / keras.ops only): runs under KERAS_BACKEND=tensorflow
and KERAS_BACKEND=jax. Two functional models share one set of layers:

- `training_model`: ids [B, T] → logits [B, T, V], every layer starting from zero state;
  or, with `carry_state`, a `CarriedStateModel` whose rows start from the final state of
  the previous batch's rows (truncated backpropagation through time).
- `stepper`: ids [B, T] and the states → logits [B, T, V] and the new states, so text
  can be scored (and validation measured) with the state carried across chunks.

States are a list of arrays [B, units]: one per GRU layer, two (h, c) per LSTM layer.

With `world="state"` the training model takes a second input, the novel of each window
[B] (0 = none), and starts every layer from a learned state for that novel: a
"book_state" embedding [K+1, S*units] through tanh. With `world="token"` the novels
are characters of their own (appended to the vocabulary) read before each window, and
nothing here changes. With `world="input"` the model also takes the novel of each window,
and a learned vector per novel ("book_input" [K+1, E], zeros at first) is added to every
character's embedding: the novel is given at every step, so it cannot fade from the state
the way a token read once can. Either way `book_start_states` gives the state each novel
starts from, which the SavedModel stores as a table; for "input" the state has one more
row, whose first value is the novel's id, and `book_gates` the novels' vectors projected
into layer 0's gates, which the SavedModel adds at every character.
"""

from __future__ import annotations

import keras
import numpy as np

from model.weights import RecurrentLayer, Weights
from train.config import TrainConfig


def build_layers(cfg: TrainConfig, vocab_size: int, n_books: int = 0) -> dict[str, keras.layers.Layer]:
    rnn = keras.layers.GRU if cfg.cell == "gru" else keras.layers.LSTM
    layers = {"embedding": keras.layers.Embedding(vocab_size, cfg.embedding_dim, name="embedding")}
    if cfg.world == "state":  # row 0: no novel; small initial values, so training starts near the zero state
        layers["book_state"] = keras.layers.Embedding(
            n_books + 1, cfg.recurrent_states * cfg.units, name="book_state",
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.01))
    if cfg.world == "input":  # row 0: no novel; zeros, so a parent's weights start unchanged
        layers["book_input"] = keras.layers.Embedding(n_books + 1, cfg.embedding_dim, name="book_input",
                                                      embeddings_initializer="zeros")
    for i in range(cfg.layers):
        layers[f"rnn_{i}"] = rnn(cfg.units, return_sequences=True, return_state=True, name=f"rnn_{i}")
        layers[f"dropout_{i}"] = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i}")
    layers["logits"] = keras.layers.Dense(vocab_size, name="logits")
    return layers


BOOK_INPUT = ("state", "input")  # worlds whose training model takes the novel of each window as a second input


def states_per_layer(cfg: TrainConfig) -> int:
    return cfg.recurrent_states // cfg.layers


def forward(cfg: TrainConfig, layers: dict, ids, states=None, training=None, book=None):
    """ids [B, T] (and optional starting states; the novel of each row [B] in an "input" world)
    → (logits [B, T, V], final states): the one pass every model here is made of, on symbolic
    inputs (functional models) or real ones."""
    k = states_per_layer(cfg)
    x = layers["embedding"](ids)
    if book is not None:
        x = x + keras.ops.expand_dims(layers["book_input"](book), 1)  # [B, 1, E]: the same at every step
    final = []
    for i in range(cfg.layers):
        start = None if states is None else list(states[i * k:(i + 1) * k])
        out = layers[f"rnn_{i}"](x, initial_state=start, training=training)
        final.extend(out[1:])
        x = layers[f"dropout_{i}"](out[0], training=training)  # identity outside training
    return layers["logits"](x), final


def book_states(cfg: TrainConfig, layers: dict, book) -> list:
    """book [B] → the starting states (a list of S tensors [B, units]) of the "state" world."""
    z = keras.ops.tanh(layers["book_state"](book))  # [B, S*units]
    return [z[:, j * cfg.units:(j + 1) * cfg.units] for j in range(cfg.recurrent_states)]


def training_model(cfg: TrainConfig, layers: dict) -> keras.Model:
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    if cfg.world not in BOOK_INPUT:
        return keras.Model(ids, forward(cfg, layers, ids)[0], name="char_rnn")
    book = keras.Input(shape=(), dtype="int32", name="book")
    if cfg.world == "input":
        return keras.Model([ids, book], forward(cfg, layers, ids, book=book)[0], name="char_rnn")
    return keras.Model([ids, book], forward(cfg, layers, ids, book_states(cfg, layers, book))[0], name="char_rnn")


class CarriedStateModel(keras.Model):
    """ids [B, T] → logits [B, T, V], each row starting from where that row of the last batch ended.

    The final states of every call are kept in non-trainable variables [B, units]
    (tracked, so `fit` carries them under JAX as it does BatchNorm's statistics) and
    start the next call; no gradient flows through them, so backpropagation stops
    at the batch edge. `reset_carry()` zeroes them (the loop does so every epoch).
    B is fixed: the batch size of training.
    """

    def __init__(self, cfg: TrainConfig, layers: dict, batch_size: int, **kwargs):
        super().__init__(name="char_rnn_carried", **kwargs)
        self.cfg, self.parts = cfg, layers
        self.carry = [self.add_weight(shape=(batch_size, cfg.units), initializer="zeros", trainable=False,
                                      name=f"carry_{j}") for j in range(cfg.recurrent_states)]

    def call(self, ids, training=False):
        start = [keras.ops.convert_to_tensor(v) for v in self.carry]
        logits, final = forward(self.cfg, self.parts, ids, start, training)
        for var, state in zip(self.carry, final):
            var.assign(keras.ops.stop_gradient(state))
        return logits

    def reset_carry(self) -> None:
        for var in self.carry:
            var.assign(keras.ops.zeros(var.shape, dtype=var.dtype))


def stepper(cfg: TrainConfig, layers: dict) -> keras.Model:
    """[ids [B, T], *states (each [B, units]), and in an "input" world book [B]] → [logits, *states]."""
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    states_in = [keras.Input(shape=(cfg.units,), name=f"state_{j}")
                 for j in range(cfg.recurrent_states)]
    if cfg.world != "input":
        logits, states_out = forward(cfg, layers, ids, states_in)
        return keras.Model([ids, *states_in], [logits, *states_out], name="char_rnn_stepper")
    book = keras.Input(shape=(), dtype="int32", name="book")
    logits, states_out = forward(cfg, layers, ids, states_in, book=book)
    return keras.Model([ids, *states_in, book], [logits, *states_out], name="char_rnn_stepper")


def build(cfg: TrainConfig, vocab_size: int, n_books: int = 0) -> tuple[keras.Model, keras.Model]:
    """(training_model, stepper) sharing weights, both built (ready for load_weights)."""
    layers = build_layers(cfg, vocab_size, n_books)
    step = stepper(cfg, layers)
    if not cfg.carry_state:
        return training_model(cfg, layers), step
    model = CarriedStateModel(cfg, layers, cfg.batch_size)
    model(keras.ops.zeros((cfg.batch_size, 1), dtype="int32"))  # creates the variables
    model.reset_carry()
    return model, step


def book_start_states(cfg: TrainConfig, model: keras.Model, n_books: int, token_base: int = 0) -> np.ndarray:
    """float32 [K+1, S, units]: the state each novel starts from (row 0: no novel).

    "none": zeros (one row); "state": the learned table through tanh; "token": the
    state after reading the novel's token from the zero state; "input": zeros for the
    S recurrent states, then one more row whose first value is the novel's id (the rest
    zeros): the SavedModel carries it with the state and adds that novel's `book_gates` to
    layer 0's gates at every character, so a story's state says which novel it is in,
    wherever the state goes (4 KiB more per state, not a copy of the vector).
    """
    n_states = cfg.recurrent_states
    if cfg.world == "none":
        return np.zeros((1, n_states, cfg.units), np.float32)
    if cfg.world == "input":
        table = np.zeros((n_books + 1, n_states + 1, cfg.units), np.float32)
        table[:, n_states, 0] = np.arange(n_books + 1)  # the novel's id, exact in float32
        return table
    if cfg.world == "state":
        table = model.get_layer("book_state").get_weights()[0]  # [K+1, S*units]
        return np.tanh(table).reshape(n_books + 1, n_states, cfg.units).astype(np.float32)
    names = ["embedding", "logits"] + [f"{kind}_{i}" for i in range(cfg.layers) for kind in ("rnn", "dropout")]
    layers = {n: model.get_layer(n) for n in names}
    tokens = keras.ops.convert_to_tensor((token_base + np.arange(n_books + 1, dtype=np.int32))[:, None])
    _, final = forward(cfg, layers, tokens, training=False)
    return np.stack([np.asarray(keras.ops.convert_to_numpy(s), np.float32) for s in final], axis=1)


def book_gates(model: keras.Model) -> np.ndarray:
    """float32 [K+1, G*units]: each novel's vector (world "input") through layer 0's input kernel."""
    vectors = np.asarray(model.get_layer("book_input").get_weights()[0], np.float32)  # [K+1, E]
    return vectors @ np.asarray(model.get_layer("rnn_0").get_weights()[0], np.float32)  # [E, G*units]


def export_weights(cfg: TrainConfig, model: keras.Model, n_books: int = 0, token_base: int = 0) -> Weights:
    """Plain NumPy weights by role, the form `model.onestep` builds a SavedModel from.

    embedding [V, E]; per layer kernel [in, G*units], recurrent [units, G*units],
    bias [2, 3*units] (GRU, input and recurrent biases) or [4*units] (LSTM); dense
    kernel [units, V] and bias [V]; book_states [K+1, S, units] (see book_start_states); for
    world "input" also book_gates [K+1, G*units].
    """
    get = lambda name: [w for w in model.get_layer(name).get_weights()]  # noqa: E731
    rnn = [RecurrentLayer(*get(f"rnn_{i}")) for i in range(cfg.layers)]  # kernel, recurrent, bias
    dense_kernel, dense_bias = get("logits")
    return Weights(embedding=get("embedding")[0], rnn=rnn, dense_kernel=dense_kernel, dense_bias=dense_bias,
                   book_states=book_start_states(cfg, model, n_books, token_base),
                   book_gates=book_gates(model) if cfg.world == "input" else None)


def set_role_weights(cfg: TrainConfig, model: keras.Model, weights: Weights) -> None:
    """The inverse of export_weights for the shared layers (a "state" world's table is left as it is)."""
    model.get_layer("embedding").set_weights([weights.embedding])
    for i, layer in enumerate(weights.rnn):
        model.get_layer(f"rnn_{i}").set_weights([layer.kernel, layer.recurrent, layer.bias])
    model.get_layer("logits").set_weights([weights.dense_kernel, weights.dense_bias])


def top_state_index(cfg: TrainConfig) -> int:
    """Index, in the list of states, of the top layer's output h (what the Dense reads)."""
    return (cfg.layers - 1) * states_per_layer(cfg)
