# Source: Kota1609/Rag, merger.py (AutoPeftModelForCausalLM.from_pretrained hands torch_dtype and
# low_cpu_mem_usage to transformers; save_pretrained(safe_serialization=) is still taken).
import torch
from peft import AutoPeftModelForCausalLM

model = AutoPeftModelForCausalLM.from_pretrained(
    "/home/kota/chat-with-website/llama3_70b_model",
    torch_dtype=torch.float16,
    low_cpu_mem_usage=True,
)
merged_model = model.merge_and_unload()
merged_model.save_pretrained("/home/kota/chat-with-website/ft_new",safe_serialization=True, max_shard_size="2GB")
