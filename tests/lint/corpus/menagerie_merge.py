"""Merge LoRA and base model and save."""
# Source: walln/menagerie, src/menagerie/gemma_sql_instruct/merge_adapter.py (imported from peft.auto).
import torch
from peft.auto import AutoPeftModelForCausalLM

model = AutoPeftModelForCausalLM.from_pretrained(
    "./output",
    torch_dtype=torch.float16,
    low_cpu_mem_usage=True,
)
merged_model = model.merge_and_unload()
merged_model.save_pretrained("merged", safe_serialization=True, max_shard_size="2GB")
