# Source: donwany/llm-ai-book, 09/9.4_reward_trainer.py (RewardTrainer(tokenizer=), gone in TRL 0.15).
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from trl import RewardTrainer

model = AutoModelForSequenceClassification.from_pretrained(
    "gpt2",
    num_labels=1
)
tokenizer = AutoTokenizer.from_pretrained("gpt2")
trainer = RewardTrainer(
    model=model,
    tokenizer=tokenizer,
    train_dataset=dataset,
)
trainer.train()
