"""A distilled content encoder: a small student of HuBERT/ContentVec for `teach-encoder`.

    frontend.py    LogMel: 16 kHz audio -> normalised log-mel at 100 Hz
    model.py       StudentEncoder, EncoderArch, count_cost (params, FLOPs per second)
    recipe.py      the shipped recipes and recipe .toml files
    data.py        speech -> segments + the teacher's features, cached memory-mapped
    train.py       the training loop (resume, TensorBoard, signals)
    checkpoint.py  encoder.pt: save_encoder, load_encoder
    teach.py       teach_encoder(...) -> TeachEncoderResult, the command
"""
from .checkpoint import load_encoder, save_encoder
from .model import EncoderArch, StudentEncoder, count_cost
from .recipe import RECIPES, EncoderRecipe, load_encoder_recipe
from .teach import TeachEncoderResult, TeachEncoderSettings, format_teach_encoder, teach_encoder

__all__ = ["load_encoder", "save_encoder", "EncoderArch", "StudentEncoder", "count_cost", "RECIPES",
           "EncoderRecipe", "load_encoder_recipe", "TeachEncoderResult", "TeachEncoderSettings",
           "format_teach_encoder", "teach_encoder"]
