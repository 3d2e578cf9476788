# Source: huggingface/trl, examples/scripts/dpo.py (stored version 004c8679): model_kwargs = dict(...) reaching
# two from_pretrained calls through **, and DPOTrainer(tokenizer=).
import torch
from datasets import load_dataset
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer, ModelConfig, get_kbit_device_map, get_peft_config, get_quantization_config

if __name__ == "__main__":
    torch_dtype = (
        model_config.torch_dtype
        if model_config.torch_dtype in ["auto", None]
        else getattr(torch, model_config.torch_dtype)
    )
    quantization_config = get_quantization_config(model_config)
    model_kwargs = dict(
        revision=model_config.model_revision,
        attn_implementation=model_config.attn_implementation,
        torch_dtype=torch_dtype,
        use_cache=False if training_args.gradient_checkpointing else True,
        device_map=get_kbit_device_map() if quantization_config is not None else None,
        quantization_config=quantization_config,
    )
    model = AutoModelForCausalLM.from_pretrained(
        model_config.model_name_or_path, trust_remote_code=model_config.trust_remote_code, **model_kwargs
    )
    peft_config = get_peft_config(model_config)
    if peft_config is None:
        model_ref = AutoModelForCausalLM.from_pretrained(
            model_config.model_name_or_path, trust_remote_code=model_config.trust_remote_code, **model_kwargs
        )
    else:
        model_ref = None
    tokenizer = AutoTokenizer.from_pretrained(
        model_config.model_name_or_path, trust_remote_code=model_config.trust_remote_code
    )
    ds = load_dataset(args.dataset_name)
    trainer = DPOTrainer(
        model,
        model_ref,
        args=training_args,
        train_dataset=ds[args.dataset_train_split],
        eval_dataset=ds[args.dataset_test_split],
        tokenizer=tokenizer,
        peft_config=peft_config,
        callbacks=None,
    )
    trainer.train()
