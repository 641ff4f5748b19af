"""Builds defects_zh.jsonl: the hand-written triplets of src/coig_writer/data/sample/triplets_zh.jsonl
with one defect planted in each row (`defect`, `from`, `expect_checks`, `note`). Rerun after
editing the hand-written triplets:

    .venv/bin/python tests/data/gate/build_defects.py
"""

import json
from pathlib import Path

root = Path(__file__).resolve().parents[3]
gold = {r["id"]: r for r in map(json.loads, (root / "src/coig_writer/data/sample/triplets_zh.jsonl")
                                .read_text("utf-8").splitlines())}
rows = []


def add(defect: str, base: str, expect: list[str], note: str, **change: str) -> None:
    r = {**gold[base], **change}
    rows.append({"id": f"defect-{len(rows) + 1}-{defect}", "defect": defect, "from": base,
                 "expect_checks": expect, "note": note,
                 **{k: r[k] for k in ("query", "thought", "answer", "title", "author", "genre")}})

PARROT = ("请理解并符合以下要求：1. 文章是真实的优秀作品，符合用户提供的写作指令。2. 4-5 条具体要求，有"
          "约束但不照抄原文、"
          "不把内容规定死。3. 以用户口吻直接提出，根据主题、风格特征、结构和文化背景给出具体要求。")
add("parroted_prompt", "gold-1", ["prompt_parrots_instructions"],
    "the demo's prompt: the data standards of the templates read back", query=PARROT)
add("parroted_prompt", "gold-5", ["prompt_parrots_instructions"],
    "standard 1 paraphrased, without '原文' or '这篇文章'",
    query="写作指令：以用户口吻直接提出；根据主题、风格特征、结构和文化背景，给出具体要求（如体裁、篇幅"
          "、视角、意象、"
          "情感基调）；有约束但给创作留出空间，不把内容全部规定死。")
add("parroted_prompt", "gold-3", ["prompt_parrots_instructions"],
    "the English standard read back (an English-template model on a Chinese text)",
    query="Give 4-5 concrete requirements (form, length, point of view, imagery, tone); constrain, "
          "but leave creative freedom: never copy sentences from the text, never dictate all of its content.")

KINDS = {
    "理解与规划": "我首先仔细阅读了写作指令，用户想要一首歌颂母爱的五言古诗，只要六句，语言朴素，结尾用比喻"
             "。",
    "结构与风格": "我决定前两句用慈母手中的线和游子身上的衣对举，中间两句写临行前密密缝衣，最后两句用比喻收"
             "束。",
    "文化与语境": "针线是传统里母亲的典型形象，寸草和三春晖的比喻符合古诗比兴的传统。",
    "叙事与展开": "从物写到人心，从缝衣的动作写到担心孩子迟迟不归的心思，最后推到母恩难报。",
    "修改与打磨": "我删去了母亲倚门送别的画面，保持六句的篇幅，押平声韵。",
}
add("json_reasoning", "gold-1", ["reasoning_not_prose"],
    "the demo's thought: a JSON object keyed by the five decision kinds, pretty-printed",
    thought=json.dumps(KINDS, ensure_ascii=False, indent=2))
add("json_reasoning", "gold-1", ["reasoning_not_prose"], "the same object on one line",
    thought=json.dumps(KINDS, ensure_ascii=False))
add("json_reasoning", "gold-1", ["reasoning_not_prose"], "a JSON array of step objects, cut off at the end",
    thought=json.dumps([{"步骤": k, "内容": v} for k, v in KINDS.items()], ensure_ascii=False)[:-40])
add("json_reasoning", "gold-1", ["reasoning_not_prose"], "a sentence, then the object as 'key: value' lines",
    thought="好的，下面是我的思考过程。\n" + "\n".join(f'"{k}": "{v}",' for k, v in KINDS.items()))
add("final_output_wrapper", "gold-6", ["reasoning_not_prose"],
    "the demo's other thought: prose that ends in a second copy of itself as JSON",
    thought=gold["gold-6"]["thought"] + "\n\n最终输出：```json\n{\"思考过程\": \"用户想要一首四言诗，谈"
                                        "生死和年老……\"}\n```")
add("headings_only", "gold-2", ["reasoning_not_prose"], "headings of the five kinds with nothing under them",
    thought="## 理解与规划\n\n## 结构与风格\n\n## 文化与语境\n\n## 叙事与展开\n\n## 修改与打磨\n\n"
            "用户想要一首七言绝句，写春天傍晚的溪边，幽草、黄鹂、春潮、野渡，只写景不抒情。")
add("mentions_source", "gold-3", ["prompt_mentions_source"], "asks to follow '原文'",
    query="请仿照原文，写一首边塞题材的七言绝句，前两句用两个比喻写月光下沙地的清冷，后两句由乐声引出戍"
          "边将士的思乡之情，"
          "不要写战斗和豪情。")
add("mentions_source", "gold-8", ["prompt_mentions_source"], "names the author",
    query="请模仿纳兰性德的笔法，用《木兰花令》的词牌，以一位被辜负的女子的口吻写一首决绝词。开头要有一"
          "句感慨人生的警句；"
          "中间化用两三个古代帝妃被冷落的典故；结尾用一个反问。语言哀婉而有骨气。")
add("mentions_source", "gold-1", ["prompt_mentions_source"], "names the poem and 'this article'",
    query="请根据这篇文章写一首《游子吟》，五言六句，从母亲缝衣的细节写起，语言朴素，结尾用比喻写母恩难报。")
add("prompt_copies_lines", "gold-2", ["prompt_copies_text"], "quotes the last two lines",
    query="请写一首七言绝句，写春天傍晚的山间溪边，后两句要写成“春潮带雨晚来急，野渡无人舟自横”，只写景"
          "不抒情，"
          "透出闲淡又寂寞的心境。")
add("prompt_copies_lines", "gold-1", ["prompt_copies_text"], "dictates the five-character first line",
    query="帮我写一首歌颂母爱的五言古诗，六句，第一句用“慈母手中线”开头，语言朴素，情感含蓄，结尾用自然"
          "界的比喻写母恩难报。")
for base, other in (("gold-4", "gold-7"), ("gold-9", "gold-2"), ("gold-6", "gold-5")):
    add("reasoning_of_another_text", base, ["reasoning_not_grounded", "reasoning_generic"],
        f"the thought of {other} on the text and prompt of {base}", thought=gold[other]["thought"])
BOILER = ("用户想要一篇作品，我首先仔细阅读了写作指令，理解用户的需求和期待，确定文章的主题和立意。在结"
          "构上，我决定采用清晰的层次，"
          "开头引入主题，中间逐步展开，结尾升华情感。风格上，语言要优美流畅，符合体裁的要求，节奏有张有"
          "弛。文化上，我注意融入传统"
          "文化元素和恰当的意象，让作品具有文化底蕴。叙事上，内容要层层推进，情感逐步递进，避免平铺直叙"
          "。最后，我反复修改润色，"
          "删去多余的字句，确保作品符合用户的全部要求。")
for base in ("gold-5", "gold-8"):
    add("generic_reasoning", base, ["reasoning_generic", "reasoning_not_grounded"],
        "boilerplate that fits any text", thought=BOILER)
REVIEW = ("这首诗通过慈母为远行的游子缝制衣服这一日常细节，表达了诗人对母爱的深切感激。前两句以“手中线”"
          "和“身上衣”对举，"
          "勾勒出母子之间的牵连；三四句写临行前母亲密密缝衣，担心孩子迟迟不归，刻画了母亲细腻的心理。最"
          "后两句运用比兴手法，"
          "以寸草比喻子女，以三春晖比喻母爱，揭示了母恩难报的主题。全诗语言朴素自然，没有华丽的辞藻，却"
          "感人至深，体现了"
          "作者真挚的情感，成为千古传诵的名篇。")
add("third_person_review", "gold-1", ["reasoning_not_first_person"],
    "a critic's appreciation, not the writer's monologue", thought=REVIEW)
add("pasted_text", "gold-4", ["reasoning_copies_text"], "the text pasted as the reasoning",
    thought="我的思路如下，直接写成：\n" + gold["gold-4"]["answer"]
    + "\n以上就是全部内容，用户要的要求都满足了。")
add("prompt_is_the_text", "gold-2", ["prompt_copies_text"],
    "the 0.5B demo's prompt: the poem itself given back as the instruction",
    query=gold["gold-2"]["answer"])
add("numbered_good_prompt", "gold-1", [], "the good prompt as a numbered list: must pass every check",
    query="请帮我写一首歌颂母爱的诗，要求如下：\n1. 五言古诗，六句，不必拘泥平仄；\n2. 从孩子出远门前母"
          "亲为他做的一件小事切入，"
          "不要空喊口号；\n3. 语言朴素得像口头话，情感含蓄；\n4. 最后两句用一个自然界的比喻，写儿女的心"
          "意永远报答不了母亲的恩情。")
add("numbered_good_prompt", "gold-3", [], "numbered with 一、二、三、: must pass every check",
    query="写一首边塞题材的七言绝句。一、场景是夜里的边城；二、前两句用两个比喻写出月光下沙地的清冷；三"
          "、后两句由一种乐声"
          "引出戍边将士的思乡；四、不写战斗和豪情，最后一句要有“所有人都”的整体感。")
add("numbered_good_prompt", "gold-9", [], "numbered with （1）（2）: must pass every check",
    query="我想要一则文言清言小品：（1）谈读书和四季，经、史、子、集各配一个季节；（2）每句给出简短的理"
          "由；（3）整齐的排比，"
          "一句说季节、一句说缘由；（4）一句话写完，不超过50字。")
add("verse_as_essay", "gold-1", ["form_mismatches_genre"],
    "the demo's genre: a five-character-line poem screened as essay (review, not rejection)", genre="essay")
add("verse_as_essay", "gold-7", ["form_mismatches_genre"], "a ci screened as a letter", genre="letter")
add("prose_as_verse", "gold-10", ["form_mismatches_genre"], "a prose aphorism screened as classical_shi",
    genre="classical_shi")
out = Path(__file__).with_name("defects_zh.jsonl")
out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
print(f"{len(rows)} rows -> {out}")
