# Source: huggingface/trl, examples/research_projects/stack_llama_2/scripts/dpo_llama2.py (stored version 0567e7f4):
# the DPO keywords still on DPOTrainer, from_pretrained(load_in_4bit=, low_cpu_mem_usage=), and a DPOConfig on
# gradient_checkpointing(_kwargs) (renamed activation_checkpointing(_kwargs) in transformers 5.23).
import torch
from accelerate import Accelerator
from datasets import load_dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer


def get_stack_exchange_paired(data_dir="data/rl", cache_dir=None):
    return load_dataset("lvwerra/stack-exchange-paired", split="train", cache_dir=cache_dir, data_dir=data_dir,
                        verification_mode="no_checks")


if __name__ == "__main__":
    model = AutoModelForCausalLM.from_pretrained(
        script_args.model_name_or_path,
        low_cpu_mem_usage=True,
        dtype=torch.float16,
        load_in_4bit=script_args.load_in_4bit,
        device_map={"": Accelerator().local_process_index},
    )
    tokenizer = AutoTokenizer.from_pretrained("meta-llama/Llama-2-7b-hf")
    train_dataset = get_stack_exchange_paired(data_dir="data/rl")
    eval_dataset = get_stack_exchange_paired(data_dir="data/evaluation")

    training_args = DPOConfig(
        per_device_train_batch_size=script_args.per_device_train_batch_size,
        max_steps=script_args.max_steps,
        gradient_accumulation_steps=script_args.gradient_accumulation_steps,
        gradient_checkpointing=script_args.gradient_checkpointing,
        learning_rate=script_args.learning_rate,
        eval_strategy="steps",
        eval_steps=script_args.eval_steps,
        output_dir=script_args.output_dir,
        report_to=script_args.report_to,
        warmup_steps=script_args.warmup_steps,
        optim=script_args.optimizer_type,
        bf16=True,
        remove_unused_columns=False,
        run_name="dpo_llama2",
        gradient_checkpointing_kwargs=dict(use_reentrant=script_args.gradient_checkpointing_use_reentrant),
        seed=script_args.seed,
    )

    peft_config = LoraConfig(r=script_args.lora_r, lora_alpha=script_args.lora_alpha, bias="none",
                             task_type="CAUSAL_LM")

    dpo_trainer = DPOTrainer(
        model,
        ref_model=None,
        args=training_args,
        beta=script_args.beta,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
        max_prompt_length=script_args.max_prompt_length,
        max_length=script_args.max_length,
    )
    dpo_trainer.train()
