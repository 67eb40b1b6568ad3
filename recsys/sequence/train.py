"""Training the GRU next-item model with JAX on CPU, within a time budget.

JAX's CPU build is a few hundred MB of wheels with no CUDA libraries (PyTorch from PyPI pulls several GB), and
the model is small enough that one jitted step over a padded batch of sessions keeps two cores busy. Every
position of a session predicts the next item with a full softmax over the catalogue (tied embeddings).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from recsys.config import SequenceConfig
from recsys.contracts.sequence_model import PAD
from recsys.sequence.gru import GruWeights
from recsys.sequence.sessions import TooFewSessionsError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainStats:
    epochs: int  # epochs run in full
    steps: int
    seconds: float
    loss: float  # mean loss of the last epoch run
    windows: int  # training windows of max_len + 1 items


def windows(sessions: list[np.ndarray], max_len: int) -> np.ndarray:
    """(n, max_len + 1) rows, right-padded with PAD: each session cut into overlapping-by-one windows, so
    every item but a session's first is a target once."""
    out = []
    for rows in sessions:
        for start in range(0, max(len(rows) - 1, 0), max_len):
            chunk = rows[start:start + max_len + 1]
            if len(chunk) >= 2:
                out.append(np.pad(chunk, (0, max_len + 1 - len(chunk)), constant_values=PAD))
    return np.stack(out).astype(np.int32) if out else np.zeros((0, max_len + 1), dtype=np.int32)


def _init(key, n_rows: int, cfg: SequenceConfig) -> dict:
    import jax

    d, h = cfg.embedding_dim, cfg.hidden_dim
    keys = jax.random.split(key, 4)
    glorot = jax.nn.initializers.glorot_uniform()
    embeddings = jax.random.normal(keys[0], (n_rows, d)) * (1.0 / np.sqrt(d))
    return {"embeddings": embeddings.at[PAD].set(0.0), "w_x": glorot(keys[1], (d, 3 * h)),
            "w_h": glorot(keys[2], (h, 3 * h)), "b_x": np.zeros(3 * h, np.float32),
            "b_h": np.zeros(3 * h, np.float32), "w_out": glorot(keys[3], (h, d)),
            "b_item": np.zeros(n_rows, np.float32)}


def _logits(params: dict, inputs):
    """(batch, steps, n_rows) next-item logits: the same equations as GruWeights.state / logits."""
    import jax
    import jax.numpy as jnp

    n = params["w_h"].shape[0]
    gates_x = params["embeddings"][inputs] @ params["w_x"] + params["b_x"]  # (B, L, 3h)

    def step(h, gx):
        gh = h @ params["w_h"] + params["b_h"]
        r = jax.nn.sigmoid(gx[:, :n] + gh[:, :n])
        z = jax.nn.sigmoid(gx[:, n:2 * n] + gh[:, n:2 * n])
        c = jnp.tanh(gx[:, 2 * n:] + r * gh[:, 2 * n:])
        h = (1.0 - z) * c + z * h
        return h, h

    h0 = jnp.zeros((inputs.shape[0], n), dtype=gates_x.dtype)
    _, states = jax.lax.scan(step, h0, jnp.swapaxes(gates_x, 0, 1))
    query = jnp.swapaxes(states, 0, 1) @ params["w_out"]  # (B, L, d)
    logits = query @ params["embeddings"].T + params["b_item"]
    return logits.at[:, :, PAD].set(-1e9)  # padding is never a next item


def fit(sessions: list[np.ndarray], item_ids: list[str], cfg: SequenceConfig) -> tuple[GruWeights, TrainStats]:
    """Train on sessions of embedding rows (1..len(item_ids), oldest first) for cfg.epochs or cfg.budget_s."""
    import jax
    import jax.numpy as jnp
    import optax

    data = windows(sessions, cfg.max_len)
    if len(data) == 0:
        raise TooFewSessionsError("no training session has two items to learn a next item from")
    params = _init(jax.random.PRNGKey(cfg.seed), len(item_ids) + 1, cfg)
    optimizer = optax.adam(cfg.learning_rate)
    opt_state = optimizer.init(params)

    def loss_fn(p, batch):
        inputs, targets = batch[:, :-1], batch[:, 1:]
        losses = optax.softmax_cross_entropy_with_integer_labels(_logits(p, inputs), targets)
        mask = (targets != PAD).astype(losses.dtype)
        return (losses * mask).sum() / jnp.maximum(mask.sum(), 1.0)

    @jax.jit
    def train_step(p, state, batch):
        loss, grads = jax.value_and_grad(loss_fn)(p, batch)
        grads["embeddings"] = grads["embeddings"].at[PAD].set(0.0)
        updates, state = optimizer.update(grads, state, p)
        return optax.apply_updates(p, updates), state, loss

    rng = np.random.default_rng(cfg.seed)
    started, steps, epochs, last_loss = time.monotonic(), 0, 0, float("nan")
    size = min(cfg.batch_size, len(data))
    out_of_time = False
    for epoch in range(cfg.epochs):
        order = rng.permutation(len(data))
        losses = []
        for begin in range(0, len(order) - size + 1, size):  # full batches only: one compiled shape
            params, opt_state, loss = train_step(params, opt_state, jnp.asarray(data[order[begin:begin + size]]))
            losses.append(loss)
            steps += 1
            if time.monotonic() - started > cfg.budget_s:
                out_of_time = True
                break
        last_loss = float(np.mean([float(v) for v in losses])) if losses else last_loss
        log.info("sequence epoch %d: loss %.4f, %.1f s", epoch + 1, last_loss, time.monotonic() - started)
        if out_of_time:
            log.warning("sequence training stopped by sequence.budget_s=%s after %d steps", cfg.budget_s, steps)
            break
        epochs += 1
    weights = GruWeights(item_ids=list(item_ids), **{k: np.asarray(v, dtype=np.float32) for k, v in params.items()})
    return weights, TrainStats(epochs, steps, time.monotonic() - started, last_loss, len(data))
