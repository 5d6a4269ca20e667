#!/usr/bin/env python3
"""Reference fixtures for the model tests, computed with Hugging Face transformers and PEFT.

The Rust tests (tests/model_*.rs, tests/peft_*.rs) read only the files this script writes into
tests/fixtures/model/; they never need torch. Regenerate the fixtures (from the crate root) with

    python3 scripts/make_model_fixtures.py \
        --model-dir datasets/models/all-MiniLM-L6-v2 --glue-dir datasets/glue

(any Python with torch, transformers, peft and safetensors works: `pip install torch transformers
peft safetensors`; this script was last run with torch 2.15, transformers 5.24, peft 0.21.2).
It writes:

- minilm_mrpc.safetensors: for the first 3 MRPC dev pairs tokenised with the model's tokenizer
  (padded to the longest pair; the ids themselves are NOT stored, so no GLUE data is committed: the
  Rust tests tokenise the same pairs from the fetched data), `positions` (the token
  rows kept: first, second, middle, last real token, one pad), `hidden_<l>` = BertModel's hidden
  state l (0 = embeddings output, 1..6 = layer outputs) at those rows `[3, 5, 384]`, and `pooled`
  `[3, 384]`, all in eval mode.
- peft_qv_r8/: a PEFT LoRA adapter for BertForSequenceClassification (num_labels = 2) on query and
  value, r = 8, lora_alpha = 16, with lora_B drawn from N(0, 0.1^2) (seed 0) so that it is not a
  no-op, and the classifier head saved by PEFT (modules_to_save).
- peft_pattern/: a smaller adapter exercising rank_pattern and alpha_pattern (key and
  intermediate.dense, r = 2, one module at r = 4, one at alpha 8).
- peft_logits.json: the logits PEFT computes for the 3 pairs with each adapter, and the logits of
  the same head without adapter (so a test can tell that the adapter mattered). The head is
  redrawn from N(0, 0.1^2) (seed 100) so that logits are of order 1.

The other direction (an adapter saved by our Rust code, loaded in PEFT) is checked with

    cargo test --test model peft_interop::   # writes target/peft-export/ (adapter + our logits)
    python3 scripts/make_model_fixtures.py --check-ours target/peft-export

which loads our adapter directory with PeftModel.from_pretrained onto the same base model and
compares PEFT's logits with the ones our model wrote (max abs difference must be below 1e-4).
Likewise `--check-merged target/merged-export` loads the merged checkpoint that
`SequenceClassifier::save_merged` wrote (same test file) with plain transformers.
"""

import argparse
import json
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertForSequenceClassification, BertModel

N_PAIRS = 3
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "model")


def read_pairs(glue_dir, n=N_PAIRS):
    path = os.path.join(glue_dir, "MRPC", "dev.tsv")
    with open(path, encoding="utf-8-sig") as f:
        rows = [line.rstrip("\n").split("\t") for line in f][1 : n + 1]
    return [(r[3], r[4]) for r in rows]


def tokenize(model_dir, pairs):
    tok = AutoTokenizer.from_pretrained(model_dir)
    enc = tok(
        [a for a, _ in pairs],
        [b for _, b in pairs],
        padding="longest",
        truncation=True,
        max_length=128,
        return_tensors="pt",
    )
    return enc["input_ids"], enc["token_type_ids"], enc["attention_mask"]


def seq_cls(model_dir):
    torch.manual_seed(0)  # the classifier head's initialisation
    m = BertForSequenceClassification.from_pretrained(
        model_dir, num_labels=2, attn_implementation="eager"
    )
    return m.eval()


def base_fixture(model_dir, ids, tt, mask):
    model = BertModel.from_pretrained(model_dir, attn_implementation="eager").eval()
    with torch.no_grad():
        out = model(input_ids=ids, token_type_ids=tt, attention_mask=mask, output_hidden_states=True)
    lengths = mask.sum(1)
    seq = ids.shape[1]
    # rows per example: first, second, middle, last real token, a pad row (or the last row)
    positions = torch.stack(
        [
            torch.tensor([0, 1, int(n) // 2, int(n) - 1, seq - 1 if int(n) < seq else int(n) - 2])
            for n in lengths
        ]
    )
    tensors = {
        "positions": positions.to(torch.int64).contiguous(),
        "pooled": out.pooler_output.contiguous(),
    }
    for l, h in enumerate(out.hidden_states):
        tensors[f"hidden_{l}"] = torch.stack(
            [h[i, positions[i]] for i in range(h.shape[0])]
        ).contiguous()
    save_file(tensors, os.path.join(OUT, "minilm_mrpc.safetensors"))
    return model


def make_adapter(model_dir, name, lora_kwargs, ids, tt, mask, seed):
    from peft import LoraConfig, get_peft_model

    model = seq_cls(model_dir)
    with torch.no_grad():
        # A head with logits of order 1, so that the 1e-4 comparisons are tight in relative terms.
        g = torch.Generator().manual_seed(100)
        model.classifier.weight.copy_(torch.randn(model.classifier.weight.shape, generator=g) * 0.1)
        model.classifier.bias.copy_(torch.randn(model.classifier.bias.shape, generator=g) * 0.1)
        plain = model(input_ids=ids, token_type_ids=tt, attention_mask=mask).logits
    cfg = LoraConfig(task_type="SEQ_CLS", lora_dropout=0.0, **lora_kwargs)
    torch.manual_seed(seed)  # lora_A's Kaiming init
    pm = get_peft_model(model, cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for n, p in pm.named_parameters():
            if "lora_B" in n:
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    pm.eval()
    with torch.no_grad():
        logits = pm(input_ids=ids, token_type_ids=tt, attention_mask=mask).logits
    pm.save_pretrained(os.path.join(OUT, name))
    readme = os.path.join(OUT, name, "README.md")  # PEFT's model-card template: not needed
    if os.path.exists(readme):
        os.remove(readme)
    return plain, logits


def check_ours(model_dir, export_dir):
    from peft import PeftModel

    with open(os.path.join(export_dir, "heterolora_logits.json")) as f:
        ours = json.load(f)
    ids = torch.tensor(ours["input_ids"])
    tt = torch.tensor(ours["token_type_ids"])
    mask = torch.tensor(ours["attention_mask"])
    base = BertForSequenceClassification.from_pretrained(
        model_dir, num_labels=len(ours["logits"][0]), attn_implementation="eager"
    )
    pm = PeftModel.from_pretrained(base, export_dir).eval()
    with torch.no_grad():
        logits = pm(input_ids=ids, token_type_ids=tt, attention_mask=mask).logits
    ref = torch.tensor(ours["logits"])
    diff = (logits - ref).abs().max().item()
    print(f"PEFT logits:\n{logits}\nour logits:\n{ref}\nmax abs diff {diff:.3e}")
    if diff > 1e-4:
        print("FAIL: PEFT does not reproduce our logits", file=sys.stderr)
        return 1
    print("OK: PEFT loads our adapter and reproduces our logits within 1e-4")
    return 0


def check_merged(export_dir):
    with open(os.path.join(export_dir, "heterolora_logits.json")) as f:
        ours = json.load(f)
    model = BertForSequenceClassification.from_pretrained(export_dir, attn_implementation="eager").eval()
    with torch.no_grad():
        logits = model(
            input_ids=torch.tensor(ours["input_ids"]),
            token_type_ids=torch.tensor(ours["token_type_ids"]),
            attention_mask=torch.tensor(ours["attention_mask"]),
        ).logits
    diff = (logits - torch.tensor(ours["logits"])).abs().max().item()
    print(f"transformers logits of the merged checkpoint vs ours: max abs diff {diff:.3e}")
    return 0 if diff <= 1e-4 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=os.environ.get("HETEROLORA_MODEL_DIR", "datasets/models/all-MiniLM-L6-v2"))
    ap.add_argument("--glue-dir", default=os.environ.get("HETEROLORA_GLUE_DIR", "datasets/glue"))
    ap.add_argument("--check-ours", metavar="DIR", help="load an adapter saved by heterolora in PEFT and compare logits")
    ap.add_argument("--check-merged", metavar="DIR", help="load a merged checkpoint saved by heterolora in transformers and compare logits")
    args = ap.parse_args()
    if args.check_merged:
        sys.exit(check_merged(args.check_merged))
    if args.check_ours:
        sys.exit(check_ours(args.model_dir, args.check_ours))

    os.makedirs(OUT, exist_ok=True)
    torch.set_grad_enabled(False)
    pairs = read_pairs(args.glue_dir)
    ids, tt, mask = tokenize(args.model_dir, pairs)
    base_fixture(args.model_dir, ids, tt, mask)
    torch.set_grad_enabled(True)

    logits = {}
    plain, l1 = make_adapter(
        args.model_dir, "peft_qv_r8", dict(r=8, lora_alpha=16, target_modules=["query", "value"]), ids, tt, mask, 0
    )
    _, l2 = make_adapter(
        args.model_dir,
        "peft_pattern",
        dict(
            r=2,
            lora_alpha=4,
            target_modules=["key", "intermediate.dense"],
            rank_pattern={"encoder.layer.2.attention.self.key": 4},
            alpha_pattern={"encoder.layer.0.intermediate.dense": 8},
        ),
        ids,
        tt,
        mask,
        1,
    )
    logits = {"no_adapter": plain.tolist(), "peft_qv_r8": l1.tolist(), "peft_pattern": l2.tolist()}
    with open(os.path.join(OUT, "peft_logits.json"), "w") as f:
        json.dump(logits, f, indent=1)
    print(json.dumps(logits, indent=1))


if __name__ == "__main__":
    main()
