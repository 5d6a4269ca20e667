#!/usr/bin/env python3
"""Group the operator profile that `bench_peft_train_step.py --profile FILE` writes (PyTorch +
PEFT's training step) into the categories of docs/performance.md; Markdown on stdout.

    python3 scripts/torch-profile-breakdown.py results/bench/torch-profile-bucketed.json
"""
import json,sys
d=json.load(open(sys.argv[1]))
tot=d['total_self_cpu_ms']
cats=[('matmul (mm, addmm, bmm)',['aten::mm','aten::addmm','aten::bmm']),
('dropout masks (bernoulli_, div_)',['aten::bernoulli_','aten::div_']),
('copies (copy_)',['aten::copy_','aten::clone']),
('element-wise (mul, add, add_, sqrt, where, all, isneginf, ...)',['aten::mul','aten::add','aten::add_','aten::sqrt','aten::where','aten::all','aten::isneginf','aten::sub','aten::rsub','aten::neg','aten::addcmul_','aten::addcdiv_','aten::lerp_','aten::mul_','aten::sum','aten::fill_','aten::zero_','aten::bitwise_and','aten::tanh']),
('GELU forward + backward',['aten::gelu','aten::gelu_backward']),
('LayerNorm forward + backward',['aten::native_layer_norm','aten::native_layer_norm_backward']),
('softmax forward + backward',['aten::_softmax','aten::_softmax_backward_data'])]
used=set()
print("| PyTorch operator group | share of self CPU time |\n|---|---|")
for k,ops in cats:
    s=sum(r['self_cpu_ms'] for r in d['ops'] if r['op'] in ops); used|=set(ops)
    print(f"| {k} | {100*s/tot:.1f}% |")
rest=sum(r['self_cpu_ms'] for r in d['ops'] if r['op'] not in used)
print(f"| everything else | {100*rest/tot:.1f}% |")
print(f"\n{tot/d['steps']:.0f} ms of self CPU time per step ({d['steps']} steps)")
