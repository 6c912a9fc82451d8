"""The S3 model store: weights and Neuron compiled artifacts shared by every worker (config/model_store.py)."""

from platform_constructs.model_store.construct import ModelStore, worker_statements

__all__ = ["ModelStore", "worker_statements"]
