# Source: eliashossain001/Gemma3N-4B-Multimodal, configs/sft_config.py (dataset_text_field inside SFTConfig is
# where TRL wants it today: a look-alike of the removed SFTTrainer(dataset_text_field=)).
from trl import SFTConfig


def get_sft_config():
    return SFTConfig(
        dataset_text_field="text",
        per_device_train_batch_size=1,
        gradient_accumulation_steps=4,
        warmup_steps=5,
        max_steps=60,
        learning_rate=2e-4,
        logging_steps=1,
        optim="adamw_8bit",
        weight_decay=0.01,
        lr_scheduler_type="linear",
        seed=3407,
        report_to="none",
    )
