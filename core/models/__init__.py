from core.models.preprocess import Preprocess
from core.models.registry import InputShape, create_model, register_scratch, scratch_specs
from core.models.wrapper import LabelSpace, LoadedModel

__all__ = ["InputShape", "LabelSpace", "LoadedModel", "Preprocess", "create_model", "register_scratch", "scratch_specs"]
