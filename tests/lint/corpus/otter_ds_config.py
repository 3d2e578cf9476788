# Source: isekai-portal/Link-Context-Learning, config/_base_/train/otter_ds.py (a config dict with old keywords
# that this file never passes to any call: nothing here reaches TrainingArguments).
training_args = dict(
    output_dir=None,
    overwrite_output_dir=False,
    report_to='none',
    seed=42,
    remove_unused_columns=False,
    do_train=True,
    per_device_train_batch_size=16,
    warmup_ratio=0.03,
    evaluation_strategy='no',
    tf32=True,
    bf16=True,
    predict_with_generate=True,
)
