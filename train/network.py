"""The character model in Keras 3: Embedding → N × (GRU|LSTM → Dropout) → Dense(vocab).

Backend-neutral (keras.layers / keras.ops only): runs under KERAS_BACKEND=tensorflow
and KERAS_BACKEND=jax. Two functional models share one set of layers:

- `training_model`: ids [B, T] → logits [B, T, V], every layer starting from zero state.
- `stepper`: ids [B, T] and the states → logits [B, T, V] and the new states, so text
  can be scored (and validation measured) with the state carried across chunks.

States are a list of arrays [B, units]: one per GRU layer, two (h, c) per LSTM layer.
"""

from __future__ import annotations

import keras

from train.config import TrainConfig


def build_layers(cfg: TrainConfig, vocab_size: int) -> dict[str, keras.layers.Layer]:
    rnn = keras.layers.GRU if cfg.cell == "gru" else keras.layers.LSTM
    layers = {"embedding": keras.layers.Embedding(vocab_size, cfg.embedding_dim, name="embedding")}
    for i in range(cfg.layers):
        layers[f"rnn_{i}"] = rnn(cfg.units, return_sequences=True, return_state=True, name=f"rnn_{i}")
        layers[f"dropout_{i}"] = keras.layers.Dropout(cfg.dropout, name=f"dropout_{i}")
    layers["logits"] = keras.layers.Dense(vocab_size, name="logits")
    return layers


def states_per_layer(cfg: TrainConfig) -> int:
    return 1 if cfg.cell == "gru" else 2


def training_model(cfg: TrainConfig, layers: dict) -> keras.Model:
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    x = layers["embedding"](ids)
    for i in range(cfg.layers):
        x = layers[f"rnn_{i}"](x)[0]
        x = layers[f"dropout_{i}"](x)
    return keras.Model(ids, layers["logits"](x), name="char_rnn")


def stepper(cfg: TrainConfig, layers: dict) -> keras.Model:
    ids = keras.Input(shape=(None,), dtype="int32", name="ids")
    k = states_per_layer(cfg)
    states_in = [keras.Input(shape=(cfg.units,), name=f"state_{j}") for j in range(cfg.layers * k)]
    x = layers["embedding"](ids)
    states_out = []
    for i in range(cfg.layers):
        out = layers[f"rnn_{i}"](x, initial_state=states_in[i * k:(i + 1) * k])
        x = out[0]
        states_out.extend(out[1:])
    return keras.Model([ids, *states_in], [layers["logits"](x), *states_out], name="char_rnn_stepper")


def build(cfg: TrainConfig, vocab_size: int) -> tuple[keras.Model, keras.Model]:
    """(training_model, stepper) sharing weights."""
    layers = build_layers(cfg, vocab_size)
    return training_model(cfg, layers), stepper(cfg, layers)


def export_weights(cfg: TrainConfig, model: keras.Model) -> dict:
    """Plain NumPy weights by role, the form `model.onestep` builds a SavedModel from.

    embedding [V, E]; per layer kernel [in, G*units], recurrent [units, G*units],
    bias [2, 3*units] (GRU, input and recurrent biases) or [4*units] (LSTM); dense
    kernel [units, V] and bias [V].
    """
    get = lambda name: [w for w in model.get_layer(name).get_weights()]  # noqa: E731
    rnn = []
    for i in range(cfg.layers):
        kernel, recurrent, bias = get(f"rnn_{i}")
        rnn.append({"kernel": kernel, "recurrent": recurrent, "bias": bias})
    dense_kernel, dense_bias = get("logits")
    return {"embedding": get("embedding")[0], "rnn": rnn, "dense_kernel": dense_kernel, "dense_bias": dense_bias}


def top_state_index(cfg: TrainConfig) -> int:
    """Index, in the list of states, of the top layer's output h (what the Dense reads)."""
    return (cfg.layers - 1) * states_per_layer(cfg)
