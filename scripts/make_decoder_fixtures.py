#!/usr/bin/env python3
"""Reference fixtures for the decoder tests (tests/model_decoders.rs), computed with transformers + PEFT.

The Rust tests read only what this script writes into tests/fixtures/decoders/; they never need torch.
Regenerate (from the crate root) with any Python that has torch, transformers, peft and safetensors:

    python3 -m venv .venv-torch && .venv-torch/bin/pip install torch transformers peft safetensors
    .venv-torch/bin/python scripts/make_decoder_fixtures.py

(last run with torch 2.15, transformers 5.25, peft 0.21.2). For each tiny random-weight model it writes
tests/fixtures/decoders/<name>/:

- config.json + model.safetensors: `save_pretrained` of a `*ForSequenceClassification` (num_labels 3)
  whose weights were redrawn (2-d maps N(0, 0.15^2), norm weights 1 + N(0, 0.1^2), biases
  N(0, 0.1^2)) so that the logits are of order 1 and a wrong op shows;
- reference.safetensors: `input_ids` / `attention_mask` `[3, 7]` (row 0 full, row 1 right-padded,
  row 2 left-padded; real tokens never equal pad_token_id), transformers' `logits` `[3, 3]` in eval
  mode (eager attention), `peft_logits` with the adapter below;
- peft/: a PEFT LoRA adapter (task SEQ_CLS, r 4, lora_alpha 8, one module at r 2 through
  rank_pattern) on two kinds of module, with lora_B drawn from N(0, 0.2^2) so it is not a no-op,
  and the `score` head that PEFT saves (modules_to_save).

Models: opt_pre (do_layer_norm_before, no projections), opt_post_proj (post-LN with
word_embed_proj_dim 16 != hidden 32: project_in / project_out, as OPT-350M), opt_pre_proj (pre-LN
with the projections), llama (4 heads, 2 key-value heads), qwen2 (q/k/v bias, 4 heads, 2
key-value heads), llama_bias_hd16 (head_dim 16, so q_proj maps 32 -> 64 and o_proj 64 -> 32;
attention and MLP biases; rope_theta 5e5).

The other direction (an adapter saved by our Rust code, loaded in PEFT) is checked with

    cargo test --test model_decoders   # writes target/decoder-peft-export/<name>/ (adapter + our logits)
    .venv-torch/bin/python scripts/make_decoder_fixtures.py --check-ours target/decoder-peft-export

which loads each adapter with PeftModel.from_pretrained onto the fixture's base model and compares
PEFT's logits with ours (max abs difference must be below 1e-4).
"""

import argparse
import json
import os
import sys

import torch
from safetensors.torch import load_file, save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "decoders")
NUM_LABELS = 3
SEQ = 7


def configs():
    from transformers import LlamaConfig, OPTConfig, Qwen2Config

    common = dict(vocab_size=64, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=32)
    return {
        "opt_pre": (
            OPTConfig(hidden_size=32, ffn_dim=48, word_embed_proj_dim=32, do_layer_norm_before=True,
                      dropout=0.0, attention_dropout=0.0, pad_token_id=1, **common),
            ["q_proj", "fc2"], "layers.1.self_attn.q_proj",
        ),
        "opt_post_proj": (
            OPTConfig(hidden_size=32, ffn_dim=48, word_embed_proj_dim=16, do_layer_norm_before=False,
                      dropout=0.0, attention_dropout=0.0, pad_token_id=1, **common),
            ["v_proj", "out_proj"], "layers.1.self_attn.v_proj",
        ),
        "opt_pre_proj": (
            OPTConfig(hidden_size=32, ffn_dim=48, word_embed_proj_dim=16, do_layer_norm_before=True,
                      dropout=0.0, attention_dropout=0.0, pad_token_id=1, **common),
            ["k_proj", "fc1"], "layers.1.fc1",
        ),
        "llama": (
            LlamaConfig(hidden_size=32, intermediate_size=48, num_key_value_heads=2, rms_norm_eps=1e-6,
                        rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, pad_token_id=0,
                        **common),
            ["k_proj", "gate_proj"], "layers.1.self_attn.k_proj",
        ),
        "qwen2": (
            Qwen2Config(hidden_size=32, intermediate_size=48, num_key_value_heads=2, rms_norm_eps=1e-6,
                        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, pad_token_id=0,
                        **common),
            ["v_proj", "down_proj"], "layers.1.mlp.down_proj",
        ),
        "llama_bias_hd16": (
            LlamaConfig(hidden_size=32, intermediate_size=48, num_key_value_heads=2, head_dim=16,
                        attention_bias=True, mlp_bias=True, rms_norm_eps=1e-5,
                        rope_parameters={"rope_type": "default", "rope_theta": 500000.0}, pad_token_id=0,
                        **common),
            ["o_proj", "up_proj"], "layers.0.self_attn.o_proj",
        ),
    }


def build(name, cfg):
    from transformers import AutoModelForSequenceClassification

    cfg.num_labels = NUM_LABELS
    cfg._attn_implementation = "eager"
    torch.manual_seed(sum(map(ord, name)))
    model = AutoModelForSequenceClassification.from_config(cfg, attn_implementation="eager")
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0, 0.15)
            elif pname.endswith("bias"):
                p.normal_(0, 0.1)
            else:
                p.copy_(1 + 0.1 * torch.randn_like(p))
    return model.eval()


def batch(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    pad = cfg.pad_token_id
    ids = torch.randint(3, cfg.vocab_size, (3, SEQ), generator=g)
    mask = torch.ones(3, SEQ, dtype=torch.long)
    mask[1, 4:] = 0  # right padding
    mask[2, :2] = 0  # left padding
    ids[mask == 0] = pad
    return ids, mask


def peft_adapter(model, targets, rank_key, seed):
    from peft import LoraConfig, TaskType, get_peft_model

    cfg = LoraConfig(task_type=TaskType.SEQ_CLS, r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets,
                     rank_pattern={rank_key: 2})
    pm = get_peft_model(model, cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return pm.eval()


def sort_target_modules(path):
    """PEFT keeps target_modules as a set: its order in the file follows the string hash seed."""
    with open(path) as f:
        cfg = json.load(f)
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
    with open(path, "w") as f:
        f.write(json.dumps(cfg, indent=2, sort_keys=True))


def generate():
    os.makedirs(OUT, exist_ok=True)
    for name, (cfg, targets, rank_key) in configs().items():
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        model = build(name, cfg)
        model.save_pretrained(d, safe_serialization=True)
        ids, mask = batch(model.config, seed=len(name))
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask).logits
        pm = peft_adapter(model, targets, rank_key, seed=7)
        with torch.no_grad():
            plogits = pm(input_ids=ids, attention_mask=mask).logits
        pm.save_pretrained(os.path.join(d, "peft"))
        os.remove(os.path.join(d, "peft", "README.md"))  # PEFT's model-card template: 5 KiB of boilerplate
        sort_target_modules(os.path.join(d, "peft", "adapter_config.json"))
        save_file(
            {"input_ids": ids.contiguous(), "attention_mask": mask.contiguous(),
             "logits": logits.contiguous(), "peft_logits": plogits.contiguous()},
            os.path.join(d, "reference.safetensors"),
        )
        print(f"{name}: logits {logits.abs().max():.3f}, peft changed them by {(plogits - logits).abs().max():.3f}")
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"total {total / 1024:.0f} KiB in {OUT}")


def check_ours(root):
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    worst = 0.0
    names = sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    if not names:
        sys.exit(f"no adapter folders in {root}")
    for name in names:
        d = os.path.join(root, name)
        base = AutoModelForSequenceClassification.from_pretrained(os.path.join(OUT, name), attn_implementation="eager")
        pm = PeftModel.from_pretrained(base, d).eval()
        ref = load_file(os.path.join(OUT, name, "reference.safetensors"))
        with torch.no_grad():
            logits = pm(input_ids=ref["input_ids"], attention_mask=ref["attention_mask"]).logits
        with open(os.path.join(d, "our_logits.json")) as f:
            ours = torch.tensor(json.load(f))
        diff = (logits - ours).abs().max().item()
        worst = max(worst, diff)
        print(f"{name}: max |PEFT - ours| = {diff:.3e}")
    print(f"max abs difference {worst:.3e}")
    sys.exit(0 if worst < 1e-4 else 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check-ours", metavar="DIR", help="compare PEFT's logits on adapters our tests saved in DIR")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.check_ours:
        check_ours(args.check_ours)
    else:
        generate()


if __name__ == "__main__":
    main()
