# Source: clovaai/length-adaptive-transformer, its TrainingArguments subclass (the copy in
# intel/intel-extension-for-transformers says "This file is copied from
# https://github.com/clovaai/length-adaptive-transformer"). Two re-declared fields transformers no longer reads:
# they are silently ignored.
from dataclasses import dataclass
from typing import Optional

from transformers import TrainingArguments as HfTrainingArguments


@dataclass
class TrainingArguments(HfTrainingArguments):
    warmup_ratio: Optional[float] = None
    logging_steps: int = 100
    evaluate_during_training: bool = True
    save_only_best: bool = True
    disable_tqdm: Optional[bool] = True
