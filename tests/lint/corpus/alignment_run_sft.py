# Source: huggingface/alignment-handbook, scripts/run_sft.py (stored version 060eb208): model_kwargs built as a
# dict(...) and handed to SFTTrainer through model_init_kwargs=, with every dataset keyword still on the trainer.
import torch
from alignment import SFTConfig, get_kbit_device_map, get_peft_config, get_quantization_config
from trl import SFTTrainer, DataCollatorForCompletionOnlyLM


def main(model_args, training_args, train_dataset, eval_dataset, tokenizer):
    torch_dtype = (
        model_args.torch_dtype if model_args.torch_dtype in ["auto", None] else getattr(torch, model_args.torch_dtype)
    )
    quantization_config = get_quantization_config(model_args)

    model_kwargs = dict(
        revision=model_args.model_revision,
        trust_remote_code=model_args.trust_remote_code,
        use_flash_attention_2=model_args.use_flash_attention_2,
        torch_dtype=torch_dtype,
        use_cache=False if training_args.gradient_checkpointing else True,
        device_map=get_kbit_device_map() if quantization_config is not None else None,
        quantization_config=quantization_config,
    )

    trainer = SFTTrainer(
        model=model_args.model_name_or_path,
        model_init_kwargs=model_kwargs,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        dataset_text_field="text",
        max_seq_length=training_args.max_seq_length,
        tokenizer=tokenizer,
        packing=False,
        peft_config=get_peft_config(model_args),
    )
    return trainer
