"""The baseline: TensorFlow's text-generation tutorial, its model in its loop.

The tutorial's OneStep calls a Keras model (Embedding → GRU with return_state → Dense)
inside a tf.function that takes and returns strings, once per character. The fixed
baseline is the tutorial's own model, Embedding 256 → one GRU 1024 → Dense over our
vocabulary (random weights: speed does not depend on them), whatever model we ship;
`weights=` runs the same loop with the shipped model's layers and weights instead.
"""

from __future__ import annotations

import os
import time

import numpy as np

from model.weights import Weights

TUTORIAL = {"embedding_dim": 256, "units": 1024, "layers": 1}  # the notebook's model


WARM_STEPS = 50  # untimed steps first: the first calls after tracing run slower (allocations, kernel caches)


class NotebookLoop:
    """The tutorial's model and its one-character tf.function, built once (measure it with `cps`).

    weights: a model's weights by role (CharModel.weights()) to run instead of the tutorial's model."""

    def __init__(self, chars: list[str], temperature: float, weights: Weights | None = None):
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras  # noqa: PLC0415  (the baseline alone needs Keras)
        import tensorflow as tf  # noqa: PLC0415

        self.tf = tf
        if weights is None:
            dims = TUTORIAL
        else:
            dims = {"embedding_dim": weights.embedding.shape[1], "units": weights.units, "layers": len(weights.rnn)}
        self.units = dims["units"]
        embedding = keras.layers.Embedding(len(chars), dims["embedding_dim"])
        grus = [keras.layers.GRU(dims["units"], return_sequences=True, return_state=True)
                for _ in range(dims["layers"])]
        dense = keras.layers.Dense(len(chars))
        x = embedding(np.zeros((1, 1), np.int32))
        for gru in grus:
            x, _ = gru(x)
        dense(x)
        if weights is not None:
            f32 = lambda a: np.asarray(a, np.float32)  # noqa: E731
            embedding.set_weights([f32(weights.embedding)])
            for gru, w in zip(grus, weights.rnn):
                gru.set_weights([f32(w.kernel), f32(w.recurrent), f32(w.bias)])
            dense.set_weights([f32(weights.dense_kernel), f32(weights.dense_bias)])
        self.grus = grus
        ids_from_chars = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(chars[1:]), tf.range(1, len(chars), dtype=tf.int64)), 0)
        vocab = tf.constant(chars)
        prediction_mask = tf.constant(np.where(np.arange(len(chars)) == 0, -np.inf, 0.0).astype(np.float32))

        @tf.function
        def generate_one_step(inputs, states):
            input_ids = ids_from_chars.lookup(tf.strings.unicode_split(inputs, "UTF-8")).to_tensor()
            x = embedding(input_ids)
            new_states = []
            for gru, state in zip(grus, states):
                x, state = gru(x, initial_state=state)
                new_states.append(state)
            logits = dense(x)[:, -1, :] / temperature + prediction_mask
            predicted = tf.squeeze(tf.random.categorical(logits, num_samples=1), axis=-1)
            return tf.gather(vocab, predicted), new_states

        self.step = generate_one_step

    def cps(self, prompt: str, length: int) -> float:
        """Chars/s generating `length` characters after `prompt`, one call per character as the tutorial does."""
        tf = self.tf
        states = [tf.zeros([1, self.units]) for _ in self.grus]
        next_char, states = self.step(tf.constant([prompt]), states)  # reads the prompt, as the tutorial does
        for _ in range(WARM_STEPS):
            next_char, states = self.step(next_char, states)
        t0 = time.perf_counter()
        out = []
        for _ in range(length):
            next_char, states = self.step(next_char, states)
            out.append(next_char[0].numpy().decode("utf-8"))
        return length / (time.perf_counter() - t0)
