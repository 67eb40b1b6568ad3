"""The sequence model's files, a contract between the batch stage that writes them and serving that maps them.

One folder per model version, `<storage.delta_root>/sequence_model/<model_version>/`, beside the version's Delta
partitions: one float32 .npy file per array of WEIGHT_ARRAYS and ITEMS_FILE, the model's item ids one per line
(item i is embedding row i + 1; row PAD is padding). The registry row's params.sequence records the outcome and
params.merge.sequence the weight serving gives the signal (docs/contracts.md, "Sequence model").
"""

from __future__ import annotations

SEQUENCE_MODEL_DIR = "sequence_model"
WEIGHT_ARRAYS = ("embeddings", "w_x", "w_h", "b_x", "b_h", "w_out", "b_item")
ITEMS_FILE = "items.txt"
PAD = 0
