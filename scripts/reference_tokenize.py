"""Reference token ids for tests/data/glue_tokenize.rs.

Run: python3 scripts/reference_tokenize.py [MODEL_DIR] [GLUE_DIR]
Encodes the first MRPC training pairs with the Hugging Face tokenizers of the model folder, both
the pure-Python `BertTokenizer` (an implementation independent of the Rust `tokenizers` crate)
and `BertTokenizerFast`, checks they agree, and prints Rust literals. Truncation: `max_length`,
strategy `longest_first` (what `transformers` does for pairs).
"""
import sys
from transformers import BertTokenizer, BertTokenizerFast

model = sys.argv[1] if len(sys.argv) > 1 else "datasets/models/all-MiniLM-L6-v2"
glue = sys.argv[2] if len(sys.argv) > 2 else "datasets/glue"
slow = BertTokenizer.from_pretrained(model)
fast = BertTokenizerFast.from_pretrained(model)

rows = open(f"{glue}/MRPC/train.tsv", encoding="utf-8-sig").read().split("\n")[1:4]
pairs = [tuple(r.split("\t")[3:5]) for r in rows]
# (source, a, b, max_len): source is the MRPC train row (0-based) or None for our own text.
cases = [(i, a, b, 128) for i, (a, b) in enumerate(pairs)] + [(0, pairs[0][0], pairs[0][1], 24)]
# A single sentence (SST-2 style) with accents and a dash that the normaliser must handle.
cases.append((None, "Café déjà vu – naïve résumé!", None, 128))

print("// transformers BertTokenizer (slow) == BertTokenizerFast, from", model)
for src, a, b, max_len in cases:
    outs = []
    for tok in (slow, fast):
        enc = tok(a, b, truncation="longest_first", max_length=max_len, padding=False)
        outs.append((enc["input_ids"], enc["token_type_ids"]))
    assert outs[0] == outs[1], (a, b, outs)
    ids, types = outs[0]
    # MRPC rows are read from the data at test time (the data is not committed).
    print("(%s, %d, &%s, &%s)," % (
        "Some(%d)" % src if src is not None else "None", max_len, ids, types))
