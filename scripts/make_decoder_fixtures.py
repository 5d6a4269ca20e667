#!/usr/bin/env python3
"""Reference fixtures for the decoder tests (tests/decoders/, one test binary), computed with transformers + PEFT.

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

Three of the folders also get a tiny tokenizer (64 ids, the models' vocab_size, trained with the
`tokenizers` library on sentences over WORDS): tokenizer.json + tokenizer_config.json, byte-level BPE
as OPT's (opt_pre: `</s>` before each sentence, pad `<pad>` = 1) and Qwen2's (qwen2: no special
tokens added, pad `<|endoftext|>` = 0), and a SentencePiece-style BPE with Llama's template (llama:
`<s>` before each sentence of a pair, no eos, no pad token: config.json's pad_token_id 0 is `<unk>`);
tokenizer_reference.json holds transformers' ids (`AutoTokenizer` on the folder, `tok(a, b)`, one
case truncated to 12 tokens) for tests/decoders/tokenize.rs. Two tokenizer-only folders (a config.json
with model_type and the special ids, no weights) have a tokenizer_config.json whose add_bos_token /
add_eos_token disagree with tokenizer.json's post-processor (transformers 5 keeps the post-processor):
llama_flags (Llama's <s> template, add_eos_token true) and opt_flags (OPT's BPE with a ByteLevel
post-processor that adds nothing, add_bos_token true with bos </s>). Only these, without torch:

    .venv-torch/bin/python scripts/make_decoder_fixtures.py --tokenizers

Models: opt_pre (do_layer_norm_before, no projections), opt_post_proj (post-LN with
word_embed_proj_dim 16 != hidden 32: project_in / project_out, as OPT-350M), opt_pre_proj (pre-LN
with the projections), llama (4 heads, 2 key-value heads), qwen2 (q/k/v bias, 4 heads, 2
key-value heads), llama_bias_hd16 (head_dim 16, so q_proj maps 32 -> 64 and o_proj 64 -> 32;
attention and MLP biases; rope_theta 5e5).

The other direction (an adapter saved by our Rust code, loaded in PEFT) is checked with

    cargo test --test decoders parity::   # writes target/decoder-peft-export/<name>/ (adapter + our logits)
    .venv-torch/bin/python scripts/make_decoder_fixtures.py --check-ours target/decoder-peft-export

which loads each adapter with PeftModel.from_pretrained onto the fixture's base model and compares
PEFT's logits with ours (max abs difference must be below 1e-4).
"""

import argparse
import json
import os
import sys

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
    import torch
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
    import torch

    g = torch.Generator().manual_seed(seed)
    pad = cfg.pad_token_id
    ids = torch.randint(3, cfg.vocab_size, (3, SEQ), generator=g)
    mask = torch.ones(3, SEQ, dtype=torch.long)
    mask[1, 4:] = 0  # right padding
    mask[2, :2] = 0  # left padding
    ids[mask == 0] = pad
    return ids, mask


def peft_adapter(model, targets, rank_key, seed):
    import torch
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
    import torch
    from safetensors.torch import save_file

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
    make_tokenizers()
    total = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(OUT) for f in fs)
    print(f"total {total / 1024:.0f} KiB in {OUT}")


def check_ours(root):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
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


# ---- tokenizers -------------------------------------------------------------------------------

# The words of the tokenizers' training corpus (and of the Rust tests' GLUE-format data): only
# these characters are in the tiny vocabularies (64 ids, the fixture models' vocab_size).
WORDS = "the a cat dog sat ran on to mat park big small red sun day is was and not".split()

# Sentence pairs (and one single sentence) whose ids transformers computes for the reference;
# the last one is truncated to TRUNCATE tokens, longest first.
PAIRS = [
    ("the cat sat on the mat", "a dog ran to the park"),
    ("the big red dog", "is not a cat"),
    ("a small cat was on a mat and the dog ran", "the sun"),
    ("the day", None),
    ("the big cat sat on the red mat and the small dog ran to the park", "the dog is not big and the cat is small"),
]
TRUNCATE = 12


def corpus():
    """Deterministic sentences over WORDS (no randomness: the merges must not depend on a seed)."""
    out = []
    n = len(WORDS)
    for i in range(200):
        k = 3 + i % 6
        out.append(" ".join(WORDS[(i * 7 + j * (i % 5 + 1)) % n] for j in range(k)))
    return out + [a for a, _ in PAIRS] + [b for _, b in PAIRS if b]


def byte_level(specials, post):
    """A byte-level BPE as OPT's and Qwen2's (GPT-2's pre-tokenizer, no byte alphabet beyond the
    corpus: 256 byte symbols would not fit 64 ids)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(vocab_size=64, special_tokens=specials,
                                                          show_progress=False))
    tok.post_processor = post(tok)
    return tok


def llama_style():
    """A SentencePiece-style BPE as Llama's: "▁" for spaces, prepended to the first word, <unk>,
    and Llama's template: <s> before each sentence of a pair (add_bos_token, no eos)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>", fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.train_from_iterator(corpus(), trainers.BpeTrainer(vocab_size=64, special_tokens=["<unk>", "<s>", "</s>"],
                                                          show_progress=False))
    tok.post_processor = processors.TemplateProcessing(
        single="<s>:0 $A:0", pair="<s>:0 $A:0 <s>:1 $B:1", special_tokens=[("<s>", 1)])
    return tok


def tokenizer_specs():
    """Folder -> (tokenizer, tokenizer_config.json): the special tokens at the ids the fixture
    configs name (OPT: pad 1, bos = eos 2; Llama: unk 0 (its pad_token_id), bos 1, eos 2; Qwen2:
    <|endoftext|> 0 as pad)."""
    from tokenizers import processors

    opt = byte_level(["<s>", "<pad>", "</s>", "<unk>"], lambda t: processors.TemplateProcessing(
        single="</s>:0 $A:0", pair="</s>:0 $A:0 </s>:1 $B:1", special_tokens=[("</s>", 2)]))
    qwen = byte_level(["<|endoftext|>"], lambda t: processors.ByteLevel(trim_offsets=False))
    return {
        "opt_pre": (opt, {"tokenizer_class": "GPT2Tokenizer", "add_bos_token": True, "bos_token": "</s>",
                          "eos_token": "</s>", "unk_token": "</s>", "pad_token": "<pad>"}),
        "qwen2": (qwen, {"tokenizer_class": "Qwen2Tokenizer", "bos_token": None, "eos_token": "<|endoftext|>",
                         "pad_token": "<|endoftext|>", "unk_token": None}),
        "llama": (llama_style(), {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True,
                                  "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                                  "unk_token": "<unk>", "legacy": False}),
        "llama_flags": (llama_style(), {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True,
                                        "add_eos_token": True, "bos_token": "<s>", "eos_token": "</s>",
                                        "unk_token": "<unk>", "legacy": False}),
        "opt_flags": (byte_level(["<s>", "<pad>", "</s>", "<unk>"],
                                 lambda t: processors.ByteLevel(trim_offsets=False)),
                      {"tokenizer_class": "GPT2Tokenizer", "add_bos_token": True, "bos_token": "</s>",
                       "eos_token": "</s>", "unk_token": "</s>", "pad_token": "<pad>"}),
    }


# The tokenizer-only folders' config.json: what Tokenizer::from_model_dir reads (model_type, pad id).
TOKENIZER_ONLY_CONFIGS = {
    "llama_flags": {"model_type": "llama", "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2},
    "opt_flags": {"model_type": "opt", "pad_token_id": 1, "bos_token_id": 2, "eos_token_id": 2},
}


def make_tokenizers():
    """tokenizer.json + tokenizer_config.json in five fixture folders, and tokenizer_reference.json:
    transformers' ids (AutoTokenizer on the folder, `tok(a, b)`) for PAIRS."""
    from transformers import AutoTokenizer

    for name, (tok, tcfg) in tokenizer_specs().items():
        d = os.path.join(OUT, name)
        assert tok.get_vocab_size() <= 64, (name, tok.get_vocab_size())
        if name in TOKENIZER_ONLY_CONFIGS:
            os.makedirs(d, exist_ok=True)
            with open(os.path.join(d, "config.json"), "w") as f:
                f.write(json.dumps(TOKENIZER_ONLY_CONFIGS[name], indent=2, sort_keys=True) + "\n")
        tok.save(os.path.join(d, "tokenizer.json"))
        with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
            f.write(json.dumps({**tcfg, "model_max_length": 32}, indent=2, sort_keys=True) + "\n")
        hf = AutoTokenizer.from_pretrained(d)
        cases = []
        for i, (a, b) in enumerate(PAIRS):
            trunc = i == len(PAIRS) - 1
            kw = {"truncation": True, "max_length": TRUNCATE} if trunc else {}
            ids = hf(a, b, **kw)["input_ids"] if b is not None else hf(a, **kw)["input_ids"]
            cases.append({"a": a, "b": b, "max_length": TRUNCATE if trunc else None, "ids": ids})
        head = {"tokenizer_class": type(hf).__name__, "pad_token_id": hf.pad_token_id,
                "eos_token_id": hf.eos_token_id}
        with open(os.path.join(d, "tokenizer_reference.json"), "w") as f:
            # One case a line: small, and a diff shows which pair changed.
            f.write(json.dumps(head)[:-1] + ', "cases": [\n'
                    + ",\n".join("  " + json.dumps(c) for c in cases) + "\n]}\n")
        print(f"{name}: {type(hf).__name__}, vocab {tok.get_vocab_size()}, pad {hf.pad_token_id}, "
              f"pair 0 -> {cases[0]['ids']}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check-ours", metavar="DIR", help="compare PEFT's logits on adapters our tests saved in DIR")
    ap.add_argument("--tokenizers", action="store_true",
                    help="write only the tokenizers and their reference ids (tokenizers + transformers, no torch)")
    args = ap.parse_args()
    if args.tokenizers:
        make_tokenizers()
        return
    import torch

    torch.set_num_threads(1)
    if args.check_ours:
        check_ours(args.check_ours)
    else:
        generate()


if __name__ == "__main__":
    main()
