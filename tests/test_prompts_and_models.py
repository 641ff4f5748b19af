import hashlib
import re
import zipfile

import pytest

from coig_writer.llm import models
from coig_writer.prompts import TemplateError, list_templates, load_template, parse_template


def test_templates_exist_in_both_languages_with_same_variables():
    assert list_templates("zh") == list_templates("en")
    for name in list_templates("zh"):
        zh, en = load_template(name, "zh"), load_template(name, "en")
        var = re.compile(r"\$\{?([_a-zA-Z][_a-zA-Z0-9]*)")
        assert set(var.findall(zh.system + zh.user)) == set(var.findall(en.system + en.user)), name
        assert zh.output == en.output and zh.version == en.version
        assert len(zh.sha256) == 64
        assert (zh.sha256 != en.sha256) == (zh.system + zh.user != en.system + en.user)


def test_render_and_missing_variable():
    t = load_template("screen", "zh")
    msgs = t.render(article="春眠不觉晓", title="春晓", genres="- poetry")
    assert msgs[0]["role"] == "system" and "春眠不觉晓" in msgs[1]["content"]
    assert '{"quality"' in msgs[1]["content"]  # JSON braces survive substitution
    with pytest.raises(TemplateError, match="article"):
        t.render(title="x", genres="y")


def test_template_hash_tracks_content(tmp_path):
    a = parse_template("name: x\nversion: 1\noutput: text\nuser: hi $a\n", "a.yaml", "zh")
    b = parse_template("name: x\nversion: 1\noutput: text\nuser: hi  $a\n", "b.yaml", "zh")
    assert a.sha256 != b.sha256
    with pytest.raises(TemplateError, match="missing keys"):
        parse_template("name: x\n", "c.yaml", "zh")
    (tmp_path / "zh").mkdir()
    (tmp_path / "zh" / "screen.yaml").write_text(
        "name: screen\nversion: 9\noutput: json\nuser: $article\n", "utf-8")
    assert load_template("screen", "zh", str(tmp_path)).version == 9


def fake_model(tmp_path, monkeypatch, parts: list[bytes], sha: str | None = None):
    """A chunked model published as local wheels, to exercise assembly and verification."""
    monkeypatch.setenv("COIG_WRITER_CACHE", str(tmp_path / "cache"))
    wheels = tmp_path / "cache" / "wheels"
    wheels.mkdir(parents=True)
    for i, data in enumerate(parts, 1):
        with zipfile.ZipFile(wheels / f"cw_fake_part{i}-1.0-py3-none-any.whl", "w") as zf:
            zf.writestr(f"cw_fake_part{i}/__init__.py", "")
            zf.writestr(f"cw_fake_part{i}/data/part{i:02d}.bin", data)
    blob = b"".join(parts)
    spec = models.EmbeddedModel("fake", "fake.gguf", "cw-fake-part{i}", len(parts), "1.0",
                                sha or hashlib.sha256(blob).hexdigest(), len(blob))
    monkeypatch.setitem(models.MODELS, "fake", spec)
    return blob


def test_model_assembly_verifies_hash(tmp_path, monkeypatch):
    blob = fake_model(tmp_path, monkeypatch, [b"GGUF" + b"a" * 1000, b"b" * 500, b"c" * 7])
    path = models.ensure_model("fake", keep_wheels=True)
    assert path.read_bytes() == blob
    assert models.ensure_model("fake") == path  # cached
    path.write_bytes(b"X" * len(blob))  # corrupted in place, same size
    with pytest.raises(models.ModelError, match="Refusing"):
        models.ensure_model("fake")


def test_model_with_wrong_hash_is_refused(tmp_path, monkeypatch):
    fake_model(tmp_path, monkeypatch, [b"a" * 10, b"b" * 10], sha="0" * 64)
    with pytest.raises(models.ModelError, match="Refusing"):
        models.ensure_model("fake")
    assert not list((tmp_path / "cache" / "models").glob("*"))  # nothing half-written left


def test_unknown_model():
    with pytest.raises(models.ModelError, match="unknown embedded model"):
        models.get_model("gpt-9")
