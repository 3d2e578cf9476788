# Source: huggingface/trl, examples/research_projects/stack_llama_2/scripts/sft_llama2.py (stored version 07f0e687):
# load_dataset(use_auth_token=), from_pretrained(use_auth_token=), SFTTrainer(max_seq_length=, tokenizer=) and the
# merge through AutoPeftModelForCausalLM.from_pretrained(torch_dtype=).
import os

import torch
from accelerate import Accelerator
from datasets import load_dataset
from peft import AutoPeftModelForCausalLM
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig
from trl import SFTTrainer
from trl.trainer import ConstantLengthDataset


def create_datasets(tokenizer, args, seed=None):
    dataset = load_dataset(
        args.dataset_name,
        data_dir=args.subset,
        split=args.split,
        use_auth_token=True,
        num_proc=args.num_workers if not args.streaming else None,
        streaming=args.streaming,
    )
    train_dataset = ConstantLengthDataset(tokenizer, dataset, formatting_func=prepare_sample_text, infinite=True,
                                          seq_length=args.seq_length)
    return train_dataset, train_dataset


bnb_config = None
if script_args.use_bnb:
    bnb_config = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_compute_dtype=torch.bfloat16,
    )

base_model = AutoModelForCausalLM.from_pretrained(
    script_args.model_name,
    quantization_config=bnb_config,
    device_map={"": Accelerator().local_process_index},
    trust_remote_code=True,
    use_auth_token=True,
)
base_model.config.use_cache = False

tokenizer = AutoTokenizer.from_pretrained(script_args.model_name, trust_remote_code=True)
train_dataset, eval_dataset = create_datasets(tokenizer, script_args, seed=training_args.seed)

trainer = SFTTrainer(
    model=base_model,
    train_dataset=train_dataset,
    eval_dataset=eval_dataset,
    peft_config=peft_config,
    max_seq_length=None,
    formatting_func=prepare_sample_text,
    tokenizer=tokenizer,
    args=training_args,
)
trainer.train()

output_dir = os.path.join(training_args.output_dir, "final_checkpoint")
model = AutoPeftModelForCausalLM.from_pretrained(output_dir, device_map="auto", torch_dtype=torch.bfloat16)
model = model.merge_and_unload()
model.save_pretrained(os.path.join(training_args.output_dir, "final_merged_checkpoint"), safe_serialization=True)
