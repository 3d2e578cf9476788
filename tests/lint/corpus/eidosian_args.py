# Source: Ace1928/eidosian_forge, archive_forge/code/class_TrainingArguments.py (a TrainingArguments subclass that
# re-declares `optim`, still a TrainingArguments field: nothing is stale).
from dataclasses import dataclass, field
from typing import Optional

import transformers


@dataclass
class TrainingArguments(transformers.TrainingArguments):
    cache_dir: Optional[str] = field(default=None)
    optim: str = field(default='adamw_torch')
    model_max_length: int = field(default=512, metadata={'help': 'Maximum sequence length. Sequences will be right padded (and possibly truncated).'})
