"""Real answer-level fine-tuning of transformers causal LMs (torch lives only in this package).

tasks (embedded arithmetic task, JSONL loader) · tokenizer · model · answers · sampling · pretrain (SFT)
· evaluate · rewards (adapters onto dagsim.grpo) · trainer (GRPO loop) · trl_rewards (TRL bridge)
· experiment · cli (``dagsim llm ...``). Importing the package imports nothing heavy.
"""
