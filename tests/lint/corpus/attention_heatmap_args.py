# Source: jp1924/attention_heatmap, utils/arguments/train_argument.py (a subclass that only adds fields).
from dataclasses import dataclass, field

from transformers import TrainingArguments


@dataclass
class BertTrainingArguments(TrainingArguments):
    cache_dir: str = field(default=None)
    num_proc: int = field(default=None)
