# Source: voidful/seq2seq-lm-trainer, push.py (push_to_hub on the loaded model and tokenizer with use_auth_token=;
# the token literal of the original is left out).
import os

from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

access_token = os.environ["HF_TOKEN"]
tokenizer = AutoTokenizer.from_pretrained("./training_output/Hubert/checkpoint-218990")
model = AutoModelForSeq2SeqLM.from_pretrained("./training_output/Hubert/checkpoint-218990")

model.push_to_hub("long-t5-base-SQA", use_auth_token=access_token)
tokenizer.push_to_hub("long-t5-base-SQA", use_auth_token=access_token)
