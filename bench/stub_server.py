"""A fixed-latency OpenAI-compatible stub server for throughput benches (not for tests of
behaviour: it answers every construction stage with a fixed valid answer after `--latency`
seconds, with unlimited parallelism). Runs in its own process:

    .venv/bin/python bench/stub_server.py --port 8911 --latency 0.2
"""

from __future__ import annotations

import argparse
import asyncio
import json

from aiohttp import web

PROMPT = "写一封给久别老友的信：语气温暖，回忆少年时一起放风筝的日子，三百字左右。"
REASONING = ("首先理解题意：用户要一封写给老朋友的信。我先确定语气：温暖而克制，不煽情。"
             "开头问候，接着回忆少年时"
             "一起放风筝的春天，用一两个具体细节唤起共同记忆；中段写如今各自的生活，承认疏远，但不"
             "责怪；结尾约定重逢，留一点期待。篇幅控制在三百字左右，句子短，口语化，像真的写信。"
             "最后检查修改，删去空话。")
FILL = {"integer": 9, "boolean": True, "string": "", "array": []}
SCREEN = {"quality": 9, "creativity": 9, "category": "communication", "genre": "letter",
          "reason": "完整"}


def answer(body: dict) -> str:
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        props = fmt["json_schema"]["schema"]["properties"]
        if "genre" in props:
            return json.dumps(SCREEN, ensure_ascii=False)
        return json.dumps({k: FILL[v.get("type", "string")] for k, v in props.items()})
    last = body["messages"][-1]["content"]  # the stage's own instructions come last
    return PROMPT if "写作指令本身" in last or "Output only the instruction" in last else REASONING


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--latency", type=float, default=0.2)
    args = ap.parse_args()

    async def chat(request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        await asyncio.sleep(args.latency)
        out = {"id": "x", "object": "chat.completion", "model": body.get("model"),
               "choices": [{"index": 0, "finish_reason": "stop",
                            "message": {"role": "assistant", "content": answer(body)}}],
               "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}
        return web.Response(body=json.dumps(out, ensure_ascii=False).encode(),
                            content_type="application/json")

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "stub"}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, backlog=4096,
                access_log=None)


if __name__ == "__main__":
    main()
