"""What ``benchmarks/inference.py`` prints: each model's table, the headline ratios, and the verdict on the targets."""

from __future__ import annotations


#: (name, ratio key, target text, predicate)
TARGETS = (
    ("ORT fp32 / torch decode, batch 8", "ort_vs_torch_decode_b8", ">= 3x", lambda v: v >= 3.0),
    ("ORT fp32 / torch decode, batch 32", "ort_vs_torch_decode_b32", ">= 3x", lambda v: v >= 3.0),
    ("fp32 prefill, % of matmul roofline (b32)", "fp32_prefill_roofline_pct_b32", ">= 80%", lambda v: v >= 80.0),
    ("int8 / fp32 end to end, batch 8", "int8_vs_fp32_e2e_b8", ">= 1.5x", lambda v: v >= 1.5),
    ("int8 / fp32 end to end, batch 32", "int8_vs_fp32_e2e_b32", ">= 1.5x", lambda v: v >= 1.5),
    ("bucketed / unsorted (documents)", "bucketed_vs_unsorted_documents", ">= 1.8x", lambda v: v >= 1.8),
    ("score / generate (doc stage)", "score_vs_generate", "~1.1-1.3x", lambda v: 1.1 <= v <= 1.3),
)


def summarize(model: dict) -> dict:
    """Headline ratios of one model's results."""
    rows = {(r["backend"], r["batch"]): r for r in model["generation"]}
    ratios = {}
    for b in (8, 32):
        if ("torch", b) in rows:
            decode = {name: rows[name, b]["decode_tok_s"] for name in ("torch", "ort_fp32", "ort_int8")}
            if decode["torch"] and decode["ort_fp32"]:
                ratios[f"ort_vs_torch_decode_b{b}"] = decode["ort_fp32"] / decode["torch"]
            if decode["ort_fp32"] and decode["ort_int8"]:
                ratios[f"int8_vs_fp32_decode_b{b}"] = decode["ort_int8"] / decode["ort_fp32"]
            if decode["torch"] and decode["ort_int8"]:
                ratios[f"int8_vs_torch_decode_b{b}"] = decode["ort_int8"] / decode["torch"]
            floor_tok_s = b / model["roofline"]["decode_matmul_floor_s"][b]
            for name in ("torch", "ort_fp32"):
                if decode[name]:
                    ratios[f"{name}_decode_pct_floor_b{b}"] = 100 * decode[name] / floor_tok_s
            if decode["torch"]:
                ratios[f"floor_vs_torch_decode_b{b}"] = floor_tok_s / decode["torch"]
            ratios[f"int8_vs_fp32_e2e_b{b}"] = rows["ort_fp32", b]["total_s"] / rows["ort_int8", b]["total_s"]
            ratios[f"ort_vs_torch_e2e_b{b}"] = rows["torch", b]["total_s"] / rows["ort_fp32", b]["total_s"]
            ratios[f"fp32_prefill_roofline_pct_b{b}"] = 100 * rows["ort_fp32", b]["prefill_flop_s"] / model["roofline"]["ort_matmul_flops"]
            ratios[f"int8_prefill_roofline_pct_b{b}"] = 100 * rows["ort_int8", b]["prefill_flop_s"] / model["roofline"]["ort_matmul_flops"]
            ratios[f"torch_prefill_roofline_pct_b{b}"] = 100 * rows["torch", b]["prefill_flop_s"] / model["roofline"]["ort_matmul_flops"]
            unfused = rows["ort_fp32_unfused", b]
            ratios[f"unfused_prefill_roofline_pct_b{b}"] = 100 * unfused["prefill_flop_s"] / model["roofline"]["ort_matmul_flops"]
            ratios[f"fused_vs_unfused_e2e_b{b}"] = unfused["total_s"] / rows["ort_fp32", b]["total_s"]
            if decode["torch"] and unfused["decode_tok_s"]:
                ratios[f"unfused_vs_torch_decode_b{b}"] = unfused["decode_tok_s"] / decode["torch"]
            if decode["ort_fp32"] and unfused["decode_tok_s"]:
                ratios[f"fused_vs_unfused_decode_b{b}"] = decode["ort_fp32"] / unfused["decode_tok_s"]
    doc = model["doc_stage"]["docs_per_s"]
    ratios["score_vs_generate"] = doc["score_fp32"] / doc["generate_fp32"]
    ratios["int8_vs_fp32_doc_scoring"] = doc["score_int8"] / doc["score_fp32"]
    ratios["bucketed_vs_unsorted"] = model["bucketing"]["all_pages"]["ratio"]
    if model["bucketing"]["pages_below_cap"]:
        ratios["bucketed_vs_unsorted_below_cap"] = model["bucketing"]["pages_below_cap"]["ratio"]
    if model["bucketing"]["documents"]:
        ratios["bucketed_vs_unsorted_documents"] = model["bucketing"]["documents"]["ratio"]
    return ratios


def print_model(model: dict) -> None:
    info, roof = model["info"], model["roofline"]
    ex = info["export"]
    print(
        f"\nmodel {info['shape']}: {info['parameters'] / 1e6:.1f}M parameters, "
        f"{info['weights_per_prompt_token'] / 1e6:.1f}M applied per prompt token (non-embedding, lm_head excluded); "
        f"vocab {info['vocab_size']}"
    )
    print(
        f"  export fp32 {ex['fp32']['export_s']:.1f} s ({ex['fp32']['bytes'] / 1e6:.1f} MB), "
        f"int8 {ex['int8']['export_s']:.1f} s ({ex['int8']['bytes'] / 1e6:.1f} MB), "
        f"unfused fp32 {ex['fp32_unfused']['export_s']:.1f} s; "
        f"fp32 MatMul roofline {roof['ort_matmul_flops'] / 1e9:.1f} GFLOP/s (onnxruntime, {roof['threads']} threads; "
        f"numpy {roof['numpy_matmul_flops'] / 1e9:.1f})"
    )
    floors = ", ".join(f"b{b} {1e3 * s:.2f} ms" for b, s in roof["decode_matmul_floor_s"].items())
    print(f"  decode matmul floor (one step's projections alone, per step): {floors}")
    first = model["generation"][0]
    print(f"  generation: {first['prompt_tokens']}-token prompts, {first['new_tokens']} new tokens, greedy, {roof['threads']} threads")
    print(f"  {'backend':16s} {'batch':>5s} {'prefill tok/s':>13s} {'% roof':>7s} {'decode tok/s':>12s} {'e2e tok/s':>10s} {'e2e s':>7s}")
    for r in model["generation"]:
        pct = 100 * r["prefill_flop_s"] / roof["ort_matmul_flops"]
        print(
            f"  {r['backend']:16s} {r['batch']:5d} {r['prefill_tok_s']:13.0f} {pct:6.0f}% "
            f"{r['decode_tok_s'] or float('nan'):12.0f} {r['e2e_tok_s']:10.0f} {r['total_s']:7.2f}"
        )
    agree = "; ".join(
        f"b{b}: fp32=torch {a['ort_fp32_rows_equal_torch']:.0%}, int8=fp32 {a['ort_int8_rows_equal_fp32']:.0%}, "
        f"unfused=torch {a['ort_fp32_unfused_rows_equal_torch']:.0%}"
        for b, a in model["token_agreement"].items()
    )
    print(f"  identical token rows: {agree}")
    print("  phase seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in model.get("phase_s", {}).items()))
    doc = model["doc_stage"]
    rate = doc["docs_per_s"]
    print(
        f"  doc stage ({doc['pages']} real pages, prompts <= {doc['prompt_cap']} tokens, mean {doc['mean_prompt_tokens']:.0f}, "
        f"batch {doc['batch_size']}, bucketed): score {rate['score_fp32']:.2f} docs/s, generate {rate['generate_fp32']:.2f} docs/s, "
        f"int8 score {rate['score_int8']:.2f} docs/s"
    )
    print(
        f"    decisions score vs generate: {doc['decisions_agree']}/{doc['pages']} agree "
        f"({'identical' if doc['decisions_identical'] else 'DIFFERENT'}), generation wrote a decision for "
        f"{doc['generated_decided']}/{doc['pages']}, keep {doc['keep']}/{doc['pages']}; int8 agrees with fp32 on "
        f"{doc['int8_decisions_agree_fp32']}/{doc['pages']}"
    )
    for label, key in (("documents", "documents"), ("all pages", "all_pages"), ("pages below cap", "pages_below_cap")):
        run = model["bucketing"][key]
        if not run:
            continue
        pad = run["padded_tokens"]
        print(
            f"  bucketing, {label} ({run['pages']} texts, cap {run['prompt_cap']}, mean {run['mean_prompt_tokens']:.0f} tokens, "
            f"{run['at_cap']} at cap): "
            f"bucketed {run['seconds']['bucketed']:.1f} s, unsorted {run['seconds']['unsorted']:.1f} s -> {run['ratio']:.2f}x; "
            f"tokens computed incl. padding {pad['unsorted']} vs {pad['bucketed']} ({run['padded_ratio']:.2f}x); "
            f"decisions agree {run['decisions_agree']}/{run['pages']}"
        )


def print_summary(shape: str, ratios: dict, quick: bool) -> list[dict]:
    note = "  (quick smoke run: timings of a tiny model on short prompts say nothing about the targets)" if quick else ""
    print(f"\nsummary ({shape} model)                     measured  target      met{note}")
    verdicts = []
    for name, key, target, ok in TARGETS:
        if key not in ratios:
            continue
        value = ratios[key]
        unit = "%" if key.endswith("pct_b32") else "x"
        shown = f"{value:.0f}%" if unit == "%" else f"{value:.2f}x"
        met = bool(ok(value))
        verdicts.append({"name": name, "key": key, "value": value, "target": target, "met": met})
        print(f"  {name:40s} {shown:>8s}  {target:10s}  {'yes' if met else 'NO'}")
    extras = [
        ("fused / unfused fp32 decode, batch 8", "fused_vs_unfused_decode_b8"),
        ("fused / unfused fp32 decode, batch 32", "fused_vs_unfused_decode_b32"),
        ("unfused ORT fp32 / torch decode, b8", "unfused_vs_torch_decode_b8"),
        ("unfused ORT fp32 / torch decode, b32", "unfused_vs_torch_decode_b32"),
        ("unfused fp32 prefill, % roofline (b32)", "unfused_prefill_roofline_pct_b32"),
        ("int8 / fp32 decode, batch 32", "int8_vs_fp32_decode_b32"),
        ("ORT int8 / torch fp32 decode, batch 8", "int8_vs_torch_decode_b8"),
        ("ORT int8 / torch fp32 decode, batch 32", "int8_vs_torch_decode_b32"),
        ("ORT fp32 / torch end to end, batch 32", "ort_vs_torch_e2e_b32"),
        ("int8 prefill, % of fp32 roofline (b32)", "int8_prefill_roofline_pct_b32"),
        ("torch prefill, % of fp32 roofline (b32)", "torch_prefill_roofline_pct_b32"),
        ("int8 / fp32 doc scoring", "int8_vs_fp32_doc_scoring"),
        ("bucketed / unsorted (all pages)", "bucketed_vs_unsorted"),
        ("bucketed / unsorted (pages below cap)", "bucketed_vs_unsorted_below_cap"),
        ("ORT fp32 decode, % of matmul floor, b8", "ort_fp32_decode_pct_floor_b8"),
        ("ORT fp32 decode, % of matmul floor, b32", "ort_fp32_decode_pct_floor_b32"),
        ("torch decode, % of matmul floor, b8", "torch_decode_pct_floor_b8"),
        ("torch decode, % of matmul floor, b32", "torch_decode_pct_floor_b32"),
        ("matmul floor / torch decode, b8 (max)", "floor_vs_torch_decode_b8"),
        ("matmul floor / torch decode, b32 (max)", "floor_vs_torch_decode_b32"),
    ]
    for name, key in extras:
        if key in ratios:
            value = ratios[key]
            shown = f"{value:.0f}%" if "pct" in key else f"{value:.2f}x"
            print(f"  {name:40s} {shown:>8s}  (info)")
    return verdicts
