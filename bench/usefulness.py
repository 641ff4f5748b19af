"""Usefulness gains on the bundled sample with the embedded 0.5B model through transformers.

Ten hand-written triplets over the texts of src/coig_writer/data/sample/classical_zh.jsonl
(prompt and planning reasoning written for this benchmark; the texts are the sample's). For each,
the clipped mean NLL of the text given prompt only, prompt + own reasoning, prompt + another
triplet's reasoning (control), and a "pasted" variant whose reasoning is the text itself (what the
copy check exists to catch: it makes the text trivially predictable). Prints per-triplet values,
per-genre distributions, the LLM-free check results, seconds per triplet on this CPU, and the
ratio of the scorer's time (batched, logits only at continuation positions, cache and store
writes included) to plain full-logit forward passes over the same token ids.

    PYTHONPATH=src .venv/bin/python bench/usefulness.py [--limit 10] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from importlib import resources
from pathlib import Path

from coig_writer.construct.checks import reasoning_problems
from coig_writer.construct.usefulness import (
    UsefulnessConfig,
    choose_control,
    distribution,
    prefix_for,
    run_usefulness,
)
from coig_writer.llm.models import TEST_MODEL, ensure_model
from coig_writer.llm.scoring import CachedScorer, TransformersScorer, clipped_mean_nll
from coig_writer.records import Provenance, Triplet
from coig_writer.store import Store

# title -> (genre, prompt, reasoning). Reasoning plans; it does not quote the poem's lines.
HAND = {
    "游子吟": ("classical_shi",
        "写一首六句的五言古诗，歌颂母爱：从母亲为远行的孩子缝衣写起，结尾用比喻说明子女难以报答母恩。",
        "首先理解题意：主题是母爱，形式是六句五言。结构上，前两句用母亲手中的针线和孩子身上的衣服两个意象对举；"
        "中间两句写出发前母亲缝得细密，担心孩子很久才回来；最后两句用小草和春天阳光作比，小草的心意报答不了春光。"
        "语言要朴素，不用生僻字，押平声韵。"),
    "滁州西涧": ("classical_shi",
        "写一首七言绝句，描写春天傍晚山涧边的景色，最后一句以无人的渡口和空船收束，表现闲适而略带寂寞的心境。",
        "构思：七言四句。第一句写自己偏爱涧边生长的幽静野草，第二句由下而上写深树中黄鹂鸣叫；"
        "第三句转写春潮夹着雨水，傍晚水流更急；第四句落在郊野渡口没有人，小船自己横在水面。"
        "意象由静到动再归于静，情感含蓄，不直接说寂寞。"),
    "夜上受降城闻笛": ("classical_shi",
        "写一首七言绝句，写边塞戍卒月夜听到笛声而思乡，要求前两句写景，后两句写闻笛与乡愁。",
        "规划：前两句写边城的月色，把烽火台前的沙比作雪，把城外的月光比作霜，突出寒冷和荒凉；"
        "第三句写不知从哪里传来芦管的声音，第四句写整夜所有出征的人都望向家乡。"
        "历史背景是唐代边塞戍守，受降城是地名；情感从景到声再到人，层层推进。"),
    "寻陆鸿渐不遇": ("classical_shi",
        "写一首五言律诗，记一次拜访隐士朋友却没有见到的经过，体现隐士居所的清幽和主人的高逸。",
        "理解：题材是访友不遇，主人是茶圣陆羽。结构按行踪展开：先写他搬家虽靠近城郭，却有野路通向桑麻田；"
        "再写篱边新种的菊花，秋天到了还没开；然后敲门没有狗叫，想离开时去问西邻；"
        "最后借邻居的回答写主人进山去了，每天太阳西斜才回来。语言平淡自然，颔联颈联对仗。"),
    "观沧海": ("classical_shi",
        "以曹操东征途中登山望海为背景，写一首四言诗，描写大海的壮阔并抒发胸怀天下的志向。",
        "背景：建安十二年北征乌桓归途，登碣石山。体裁为四言，每句四字。结构：先交代向东登上碣石来看海；"
        "再写海水荡漾、山岛高耸，树木茂盛、百草丰美；秋风吹起，大浪涌动；然后想象日月星辰仿佛都从海中升起，"
        "显出吞吐宇宙的气魄；最后用乐府套语收尾，表示歌唱以表达志向。"),
    "龟虽寿": ("classical_shi",
        "写一首四言乐府诗，谈论生命的有限与人的志向，表现老当益壮、积极进取的人生态度。",
        "立意：承认寿命有尽，但强调意志不衰，并指出保养身心可以延年。结构三层：先用神龟和腾蛇说明长寿的生灵也会死去；"
        "再用年老的千里马趴在马槽边仍想奔驰作比，引出有抱负的人到了晚年雄心不减；"
        "最后说寿命长短不全由天定，调养得当可以长寿，以乐府结尾套语收束。语言刚健。"),
    "长相思·山一程": ("ci",
        "以“长相思”词牌写一首小令，写随皇帝出关途中夜宿军营思念家乡，上片写行程，下片写风雪之夜难眠。",
        "词牌长相思，上下片各四句，叠字起句。上片：用山一程、水一程的叠句写路途遥远，向山海关外行进，"
        "夜里无数营帐灯火；下片：风一更、雪一更，风雪声吵碎思乡的梦，家乡没有这样的声音。"
        "背景是清代康熙东巡，作者为侍卫；情感内敛，以声音和灯火表现乡愁，结尾对比故园。"),
    "木兰花令·拟古决绝词": ("ci",
        "以“木兰花令”词牌，借女子口吻写一首决绝词，感叹人心易变，化用班婕妤团扇和唐明皇杨贵妃的典故。",
        "理解题意：拟古决绝词，女子对负心人的怨而不怒。开头用假设：如果人生永远像初次相见那样美好，"
        "就不会有秋天被弃置的扇子那样的悲哀；接着说对方轻易变了心，反而说情人之心本来容易变；"
        "再用骊山夜半誓言、雨夜铃声的典故写唐明皇与杨贵妃，即使分离也不怨；"
        "最后说你这薄情的贵公子，怎比得上当年比翼鸟连理枝的誓愿。修改时注意典故衔接自然。"),
    "幽梦影·1": ("essay",
        "仿照清代小品文的笔法，用一句排比写读不同类书籍适合的季节，并给出每个季节的理由。",
        "结构用四个并列分句，每句格式为“读某类书宜某季，其某某也”。经书对应冬天，因为精神专注；"
        "史书对应夏天，因为白天长；诸子对应秋天，因为意趣特别；文集对应春天，因为生机勃发。"
        "语言文言，简洁，句式整齐，体现文人趣味。"),
    "幽梦影·5": ("essay",
        "用清言小品的形式写一句话，列举文人为美好事物担忧的几种情形，最后点出这是一种慈悲心肠。",
        "构思：用“为甲忧乙”的排比：为月亮担心云遮，为书担心虫蛀，为花担心风雨，为才子佳人担心命运不好；"
        "最后一句总结这真是菩萨一样的心肠。语气带一点自嘲和温情，篇幅短，文言。"),
}


def sample_triplets() -> list[Triplet]:
    path = resources.files("coig_writer") / "data/sample/classical_zh.jsonl"
    out = []
    for i, line in enumerate(path.read_text("utf-8").splitlines()):
        d = json.loads(line)
        genre, prompt, reasoning = HAND[d["title"]]
        out.append(Triplet(
            id=f"sample-{i}", query=prompt, thought=reasoning, answer=d["text"], genre=genre,
            category="poetry" if genre != "essay" else "nonfiction", status="accepted",
            provenance=Provenance(source_url=d["source_url"], license=d["license"],
                                  title=d["title"], author=d["author"])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    scorer = TransformersScorer(ensure_model(TEST_MODEL), name=TEST_MODEL, batch_size=4)
    load_s = time.perf_counter() - t0
    triplets = sample_triplets()[:args.limit]
    pasted = [t.model_copy(update={"id": t.id + "-pasted", "thought": t.answer,
                                   "genre": "pasted", "status": "rejected"}) for t in triplets]
    cfg = UsefulnessConfig()
    with tempfile.TemporaryDirectory() as tmp, Store(Path(tmp) / "bench.sqlite") as store:
        for t in triplets + pasted:
            store.construct.put_triplet(t)
        cached = CachedScorer(scorer, store)
        t1 = time.perf_counter()
        asyncio.run(run_usefulness(store, cached, cfg, limit=len(triplets)))
        score_s = time.perf_counter() - t1
        # the reference: bare forward passes over the very same token ids, no cache, no store
        seqs = []
        for t in triplets:
            for r in ("", t.thought, choose_control(t, triplets).thought):
                p = prefix_for(scorer, t.query, r, cfg)
                seqs.append((scorer.encode(p), scorer.encode(t.answer)))
        t2 = time.perf_counter()
        for p_ids, c_ids in seqs:  # lm-evaluation-harness style: full logits, one sequence
            with torch.no_grad():
                logits = scorer.model(torch.tensor([p_ids + c_ids])).logits[0]
            lp = torch.log_softmax(logits[len(p_ids) - 1:-1].float(), dim=-1)
            lp.gather(-1, torch.tensor(c_ids)[:, None])
        bare_s = time.perf_counter() - t2
        # pasted reasoning: scored separately so the controls above stay among real reasonings
        pasted_nll = {}
        for t in pasted:
            lp = asyncio.run(scorer.token_logprobs(prefix_for(scorer, t.query, t.thought, cfg),
                                                   t.answer))
            pasted_nll[t.id.removesuffix("-pasted")] = clipped_mean_nll(lp, cfg.clip_min)
        rows = store.usefulness.usefulness_rows()

    print(f"scorer {TEST_MODEL} (GGUF Q4_K_M dequantized to float32 by transformers), "
          f"{torch.get_num_threads()} threads; load {load_s:.1f}s")
    print(f"{'triplet':<24}{'tokens':>7}{'prompt':>8}{'own':>8}{'control':>8}{'gain':>8}"
          f"{'vs ctrl':>8}{'pasted':>8}  checks")
    by_id = {t.id: t for t in triplets}
    for r in rows:
        t = by_id[r["triplet_id"]]
        problems = reasoning_problems(t.query, t.thought, t.answer)
        print(f"{t.provenance.title:<24}{r['tokens']:>7}{r['nll_prompt']:>8.3f}{r['nll_own']:>8.3f}"
              f"{r['nll_control']:>8.3f}{r['gain']:>+8.3f}{r['gain_vs_control']:>+8.3f}"
              f"{pasted_nll[t.id]:>8.3f}  {'; '.join(p.split(':')[0] for p in problems) or 'ok'}")
    print("\nper genre:")
    for d in distribution(rows):
        print(f"  {d['group']:<14} n={d['count']:<3} mean gain {d['mean_gain']:+.3f} "
              f"(median {d['median_gain']:+.3f}, min {d['min_gain']:+.3f}, max "
              f"{d['max_gain']:+.3f}); vs control {d['mean_gain_vs_control']:+.3f}; "
              f"gain > 0: {d['positive']:.0%}")
    pasted_flagged = sum(any(p.startswith("reasoning_copies_text") for p in
                             reasoning_problems(t.query, t.thought, t.answer)) for t in pasted)
    gains_pasted = [next(r["nll_prompt"] for r in rows if r["triplet_id"] == k) - v
                    for k, v in pasted_nll.items()]
    print(f"\npasted text as reasoning: mean gain {statistics.fmean(gains_pasted):+.3f}; "
          f"flagged by the copy check: {pasted_flagged}/{len(pasted)}")
    n = len(triplets)
    print(f"time: {score_s / n:.2f}s per triplet (3 conditions, one batched call) on CPU; "
          f"reference (full-logit forward per sequence, lm-evaluation-harness style, same ids) "
          f"{bare_s / n:.2f}s per triplet; ratio {score_s / bare_s:.2f}")


if __name__ == "__main__":
    main()
