from core.data.base import Dataset, Split
from core.data.registry import list_datasets, load_dataset

__all__ = ["Dataset", "Split", "list_datasets", "load_dataset"]
