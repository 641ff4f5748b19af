"""Cheap Chinese-aware quality pre-filters, run at ingest before any LLM call.

After the Gopher (Rae et al. 2021) and FineWeb (Penedo et al. 2024) heuristics, adapted to
Chinese, which has no spaces and its own punctuation. Each filter has a name (the filter
reason) and a threshold in `PrefilterConfig` (a YAML file: `--prefilter-config`):

    han_share          share of Han characters among non-space characters < min_han_share
    repeated_lines     share of lines that repeat an earlier line > max_dup_line_share
    repeated_paragraphs share of characters in repeated paragraphs > max_dup_para_chars
    boilerplate        share of lines with a boilerplate phrase (版权所有, 扫码关注, ...) > max
    long_sentences     mean characters per sentence-ending mark (。！？!?…) > max_sentence_chars
    line_punctuation   share of lines ending in punctuation (Chinese: also ，；：) < min
    links              share of lines that hold a URL > max_link_lines
    lists              share of lines that start with a bullet or a list number > max_list_lines

Filters that need lines (line_punctuation, lists, links) look only at texts of at least
`min_lines` lines: a one-paragraph text has no line statistics to speak of.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

BOILERPLATE = ("版权所有", "版权声明", "免责声明", "转载请注明", "未经授权", "扫码关注", "关注公众号",
               "长按识别", "点击下载", "点击查看", "点击阅读", "阅读原文", "分享到", "上一篇", "下一篇",
               "上一页", "下一页", "返回顶部", "登录", "注册", "ICP备", "公网安备", "举报", "广告",
               "cookie", "copyright", "all rights reserved", "责任编辑", "本文来源")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_SPACE = re.compile(r"\s")
_SENTENCE_END = re.compile(r"[。！？!?…]+|\.(?=\s|$)")
_LINE_END = tuple("。！？!?…，,；;：:」』”’）)》】~～.\"'")
_URL = re.compile(r"https?://|www\.\w", re.I)
_BULLET = re.compile(r"^\s*([-*•·●○■□◆◇▪►–—]|\d{1,3}[.)、]|[（(]?[一二三四五六七八九十]{1,3}[、.)）])\s*")


class PrefilterConfig(BaseModel):
    """Thresholds of the pre-filters (a filter is off when its threshold is null)."""

    model_config = ConfigDict(extra="forbid")
    min_han_share: float | None = 0.3
    max_dup_line_share: float | None = 0.3
    max_dup_para_chars: float | None = 0.2
    max_boilerplate_lines: float | None = 0.3
    max_sentence_chars: float | None = 200
    min_line_punct: float | None = 0.12
    max_link_lines: float | None = 0.3
    max_list_lines: float | None = 0.9
    min_lines: int = 3  # line-based filters look at texts of at least this many lines

    @property
    def names(self) -> list[str]:
        return [name for name, key in FILTERS if getattr(self, key) is not None]


FILTERS = (("han_share", "min_han_share"), ("repeated_lines", "max_dup_line_share"),
           ("repeated_paragraphs", "max_dup_para_chars"), ("boilerplate", "max_boilerplate_lines"),
           ("long_sentences", "max_sentence_chars"), ("line_punctuation", "min_line_punct"),
           ("links", "max_link_lines"), ("lists", "max_list_lines"))


def load_prefilters(path: Path) -> PrefilterConfig:
    """Thresholds from a YAML file (ValueError naming the file and the wrong key)."""
    try:
        data = yaml.safe_load(path.read_text("utf-8")) or {}
        return PrefilterConfig.model_validate(data)
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: cannot read the pre-filter config: {e}") from None
    except ValidationError as e:
        wrong = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise ValueError(f"{path}: {wrong}") from None


def _dup_share(items: list[str]) -> float:
    seen: Counter[str] = Counter(items)
    return sum(n - 1 for n in seen.values()) / len(items) if items else 0.0


def measures(text: str) -> dict[str, float]:
    """The value each filter compares with its threshold (None-free: 0.0 when not defined)."""
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    paras = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    chars = _SPACE.sub("", text)
    n = max(len(lines), 1)
    para_count = Counter(paras)
    dup_para = sum(len(p) * (k - 1) for p, k in para_count.items())
    ends = len(_SENTENCE_END.findall(text))
    low = [ln.lower() for ln in lines]
    return {
        "han_share": len(_HAN.findall(chars)) / max(len(chars), 1),
        "repeated_lines": _dup_share(lines),
        "repeated_paragraphs": dup_para / max(sum(len(p) for p in paras), 1),
        "boilerplate": sum(any(b in ln for b in BOILERPLATE) for ln in low) / n,
        "long_sentences": len(chars) / max(ends, 1),
        "line_punctuation": sum(ln.endswith(_LINE_END) for ln in lines) / n,
        "links": sum(bool(_URL.search(ln)) for ln in lines) / n,
        "lists": sum(bool(_BULLET.match(ln)) for ln in lines) / n,
        "lines": float(len(lines)),
    }


def failures(text: str, cfg: PrefilterConfig) -> list[str]:
    """Every pre-filter the text fails, as reasons (`han_share: 0.12 < 0.3`), in FILTERS order."""
    m = measures(text)
    out = []
    short = m["lines"] < cfg.min_lines
    for name, key in FILTERS:
        limit = getattr(cfg, key)
        if limit is None or (short and name in ("line_punctuation", "links", "lists")):
            continue
        value = m[name]
        if key.startswith("min_") and value < limit:
            out.append(f"{name}: {value:.2f} < {limit:g}")
        elif key.startswith("max_") and value > limit:
            out.append(f"{name}: {value:.2f} > {limit:g}")
    return out


def prefilter_reason(text: str, cfg: PrefilterConfig | None) -> str | None:
    """The first pre-filter the text fails; None when it passes them all (or `cfg` is None)."""
    if cfg is None:
        return None
    found = failures(text, cfg)
    return found[0] if found else None
